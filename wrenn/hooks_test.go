package wrenn

import (
	"context"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/stream"
)

// The test seams of this package: the wait between retries (per client) and
// the configuration of WebSocket dials (per context). Production code keeps
// only the variables they replace.

// sleepHooks maps a *Client to the func that replaces its wait between
// retries.
var sleepHooks sync.Map

type dialTuningKey struct{}

func init() {
	retrySleep = func(c *Client, ctx context.Context, d time.Duration) error {
		if h, ok := sleepHooks.Load(c); ok {
			return h.(func(context.Context, time.Duration) error)(ctx, d)
		}
		return sleepContext(ctx, d)
	}
	tuneDial = func(ctx context.Context, cfg *stream.DialConfig) {
		if tune, ok := ctx.Value(dialTuningKey{}).(func(*stream.DialConfig)); ok {
			tune(cfg)
		}
	}
}

// setSleepHook makes c call hook instead of waiting between retries, until
// the test ends.
func setSleepHook(t testing.TB, c *Client, hook func(context.Context, time.Duration) error) {
	sleepHooks.Store(c, hook)
	t.Cleanup(func() { sleepHooks.Delete(c) })
}

// withDialTuning returns ctx carrying a change to the channels' timers.
func withDialTuning(ctx context.Context, tune func(*stream.DialConfig)) context.Context {
	return context.WithValue(ctx, dialTuningKey{}, tune)
}
