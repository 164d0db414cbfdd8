package main

import "git.omukk.dev/wrenn/go-sdk/wrenntest"

// startLocal starts a local Wrenn server in this process, on a free
// 127.0.0.1 port with a generated API key and a temporary data directory
// that Close removes.
func startLocal() (*wrenntest.Server, error) {
	return wrenntest.Start(wrenntest.Config{})
}
