package wrenntest

import (
	"errors"
	"fmt"
)

// Endpoint is where a server answers and the API key it accepts: all a
// client needs (with the SDK, its base URL and API key options).
type Endpoint struct {
	// BaseURL is the server's base URL, such as http://127.0.0.1:41234.
	BaseURL string
	// APIKey is the first team's API key.
	APIKey string
}

// Env returns the endpoint as the environment variables WRENN_BASE_URL and
// WRENN_API_KEY, in the "NAME=value" form of os/exec's Cmd.Env, for the
// programs a program starts.
func (e Endpoint) Env() []string {
	return []string{"WRENN_BASE_URL=" + e.BaseURL, "WRENN_API_KEY=" + e.APIKey}
}

// StartLocal starts a local server for a program (tests use [NewServer]):
// on a free 127.0.0.1 port, with a generated API key and a temporary data
// directory, configured by the options of NewServer. It returns the
// server's endpoint and a stop function that destroys every capsule and
// removes the data; call it before the program exits (calling it again
// does nothing).
//
// When bubblewrap is missing, the error matches [ErrNoBubblewrap] and says
// what to install: the Debian package bubblewrap ("apt-get install
// bubblewrap" as root), or the bubblewrap package of another distribution.
//
//	ep, stop, err := wrenntest.StartLocal()
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer stop()
//	client, err := wrenn.NewClient(wrenn.WithBaseURL(ep.BaseURL), wrenn.WithAPIKey(ep.APIKey))
func StartLocal(opts ...Option) (Endpoint, func() error, error) {
	var cfg Config
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := Start(cfg)
	if errors.Is(err, ErrNoBubblewrap) {
		return Endpoint{}, nil, fmt.Errorf("wrenntest: the local Wrenn server runs capsules in bubblewrap sandboxes and bwrap is not installed; "+
			"install the Debian package bubblewrap (as root: apt-get install bubblewrap), or your distribution's bubblewrap package: %w", err)
	}
	if err != nil {
		return Endpoint{}, nil, err
	}
	return Endpoint{BaseURL: srv.BaseURL(), APIKey: srv.APIKey()}, srv.Close, nil
}
