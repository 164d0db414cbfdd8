// Package timeout holds the one error value that every package of the
// module reports an exhausted time limit with, so that wrenn.ErrTimeout,
// stream.ErrTimeout and jupyter.ErrTimeout are the same value and
// errors.Is matches any of them whichever layer the limit ran out in.
package timeout

import "errors"

// Err is the time limit error; each package re-exports it as ErrTimeout.
var Err = errors.New("timed out")
