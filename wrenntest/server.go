package wrenntest

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

// Version is reported by GET /health.
const Version = "0.1.5-local"

// ErrNoBubblewrap is returned by [Start] (and makes [NewServer] skip the
// test) when bwrap is not installed. Its message names the Debian package
// bubblewrap.
var ErrNoBubblewrap = sandbox.ErrNoBubblewrap

// Config configures a server started with [Start].
type Config struct {
	// Addr is the TCP address to listen on; "" means 127.0.0.1:0 (a free
	// loopback port).
	Addr string
	// APIKey is the first team's key; "" generates one. It must look like
	// a real key: "wrn_" and 32 lowercase hex digits.
	APIKey string
	// DataDir holds capsule and snapshot data; "" creates a temporary
	// directory that Close removes.
	DataDir string
	// KeepData keeps the data directory on Close, even a temporary one:
	// the snapshot files and the template registry (templates.json), so a
	// server started again on the same DataDir lists and boots the
	// snapshots of every API key it is given again. Capsules are
	// destroyed, and their data removed, either way. A kept temporary
	// directory without snapshots is removed when a later server starts.
	KeepData bool
	// Logger receives request and lifecycle logs; nil discards them.
	Logger *slog.Logger
	// TTLCheckInterval is how often capsules with timeout_sec are checked
	// for inactivity (the real host checks about every 2 s, the default).
	TTLCheckInterval time.Duration
	// MetricsInterval is the capsule metrics sampling period (default
	// 500 ms, as the real host).
	MetricsInterval time.Duration
	// StatsInterval is the team stats sampling period (default 10 s).
	StatsInterval time.Duration
	// PTYPingInterval is how often PTY WebSocket sessions send
	// {"type":"ping"} (default 30 s, as the real server).
	PTYPingInterval time.Duration
	// MaxConnections caps the open client connections (0: three quarters
	// of the process's file-descriptor limit, keeping at least 256
	// descriptors for capsules). At the cap, the connection idle or stalled
	// for longest is closed to admit a new one, and a warning is logged.
	MaxConnections int
	// bodyIdle replaces bodyIdleTimeout (tests).
	bodyIdle time.Duration

	// Capacity, when positive, is how many capsules may run at once; a
	// create beyond it is 503 no_hosts_available (see
	// [Server.SetCapacity]).
	Capacity int
	// FirstOutputQuirk drops the first output frame of every exec stream,
	// as the real server may for very fast commands (see
	// [Server.SetFirstOutputQuirk]).
	FirstOutputQuirk bool
	// Latency delays every request by this much before it is handled
	// (see [Server.AddLatency]).
	Latency time.Duration
	// UploadLimit, when positive, limits the request body of both upload
	// routes (see [WithUploadLimit]); 0 keeps the real server's limit of
	// 100 MiB on files/write and none on files/stream/write.
	UploadLimit int64
}

// Option adjusts the Config of [NewServer].
type Option func(*Config)

// WithAPIKey sets the first team's API key.
func WithAPIKey(key string) Option { return func(c *Config) { c.APIKey = key } }

// WithDataDir stores capsule data in dir instead of the test's temporary
// directory.
func WithDataDir(dir string) Option { return func(c *Config) { c.DataDir = dir } }

// WithLogger sends the server's logs to l.
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

// WithTTLCheckInterval sets how often inactive capsules are auto-paused.
func WithTTLCheckInterval(d time.Duration) Option {
	return func(c *Config) { c.TTLCheckInterval = d }
}

// WithMetricsInterval sets the metrics sampling period.
func WithMetricsInterval(d time.Duration) Option {
	return func(c *Config) { c.MetricsInterval = d }
}

// WithStatsInterval sets the team stats sampling period.
func WithStatsInterval(d time.Duration) Option {
	return func(c *Config) { c.StatsInterval = d }
}

// Server is a local Wrenn control plane whose capsules are bubblewrap
// sandboxes on this machine. Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	rt  *sandbox.Runtime
	// metadata is every capsule's metadata (see runtimeMetadata and
	// limitsMetadata).
	metadata map[string]string
	dataDir  string
	ownsData bool
	apiKey   string
	router   *router
	handler  http.Handler
	http     *http.Server
	ln       net.Listener
	// conns caps and watches the listener's connections (nil when only
	// the handler is used); bodyIdle is its request-body idle timeout.
	conns    *connGuard
	bodyIdle time.Duration
	baseURL  string

	// proxy, when set (by a setup hook), gets every request first and
	// reports whether it handled it (Host-based port proxy).
	proxy func(w http.ResponseWriter, r *http.Request) bool
	hub   *hub // the WebSocket routes' and the port proxy's state

	mu        sync.Mutex
	keys      map[string]string // API key → team id
	capsules  map[string]*capsuleRecord
	templates map[string]map[string]*template // team id → name → template
	book      statsBook
	closed    bool
	slots     int // network slots handed out (host_ip)

	// faults are the injected faults in the order they were added
	// (faults.go).
	faultMu sync.Mutex
	faults  []*Fault

	stop   chan struct{}
	loops  sync.WaitGroup
	closer sync.Once
	errs   error
}

// setupHooks run at the end of server construction. Other files of this
// package register WebSocket routes and the port proxy through them, e.g.
//
//	func init() {
//		setupHooks = append(setupHooks, func(s *Server) {
//			s.handleAuthed("GET", "/v1/capsules/{id}/exec/stream", s.execStream)
//			s.proxy = s.servePortProxy
//		})
//	}
//
// Routes registered there get the same 404/405 treatment as the REST ones.
var setupHooks []func(*Server)

// Start starts a server listening on cfg.Addr. Without bwrap it fails with
// [ErrNoBubblewrap].
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = s.shutdownRuntime()
		return nil, fmt.Errorf("wrenntest: listen: %w", err)
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = defaultMaxConnections()
	}
	s.conns = newConnGuard(ln, cfg.MaxConnections, s.log)
	s.ln = s.conns
	s.baseURL = "http://" + ln.Addr().String()
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       620 * time.Second,
		ConnState:         s.conns.connState,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.log.Info("wrenn local server listening", "base_url", s.baseURL, "data_dir", s.dataDir)
	return s, nil
}

// NewServer starts a server on a free 127.0.0.1 port for the test and stops
// it (destroying every capsule and removing its data) when the test ends.
// Without bwrap the test is skipped with a message naming the Debian
// package bubblewrap.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	if err := sandbox.CheckTools(); err != nil {
		t.Skipf("wrenntest: %v", err)
	}
	var cfg Config
	for _, o := range opts {
		o(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("wrenntest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("wrenntest: close: %v", err)
		}
	})
	return s
}

func newServer(cfg Config) (*Server, error) {
	if err := sandbox.CheckTools(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.TTLCheckInterval <= 0 {
		cfg.TTLCheckInterval = 2 * time.Second
	}
	if cfg.MetricsInterval <= 0 {
		cfg.MetricsInterval = 500 * time.Millisecond
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 10 * time.Second
	}
	if cfg.APIKey == "" {
		cfg.APIKey = GenerateAPIKey()
	}
	if !apiKeyPattern.MatchString(cfg.APIKey) {
		return nil, errors.New("wrenntest: API key must be wrn_ followed by 32 lowercase hex digits")
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		apiKey:    cfg.APIKey,
		keys:      map[string]string{},
		capsules:  map[string]*capsuleRecord{},
		templates: map[string]map[string]*template{"": builtinTemplates()},
		stop:      make(chan struct{}),
		bodyIdle:  cmp.Or(cfg.bodyIdle, bodyIdleTimeout),
	}
	s.keys[cfg.APIKey] = teamFor(cfg.APIKey)
	if cfg.DataDir == "" {
		removeStaleDataDirs(os.TempDir())
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", tempDataPrefix, os.Getpid()))
		if err != nil {
			return nil, fmt.Errorf("wrenntest: data dir: %w", err)
		}
		cfg.DataDir, s.ownsData = dir, true
	}
	s.dataDir = cfg.DataDir
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("wrenntest: data dir: %w", err)
	}
	rt, err := sandbox.New(sandbox.Config{DataDir: s.dataDir, Logger: log, Warm: warmCapsules})
	if err != nil {
		if s.ownsData {
			_ = os.RemoveAll(s.dataDir)
		}
		return nil, err
	}
	s.rt = rt
	s.metadata = maps.Clone(runtimeMetadata)
	maps.Copy(s.metadata, limitsMetadata(rt))
	if err := s.loadRegistry(); err != nil {
		_ = s.rt.Close()
		if s.ownsData {
			_ = os.RemoveAll(s.dataDir)
		}
		return nil, err
	}
	s.routes()
	for _, hook := range setupHooks {
		hook(s)
	}
	s.router.intercept = s.intercept
	s.handler = http.HandlerFunc(s.serve)
	s.loops.Add(1)
	go s.housekeeping()
	return s, nil
}

// serve is the root handler: port proxy first, then the API routes. Each
// request is logged at debug level.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "host", r.Host,
			"status", rec.status, "duration", time.Since(start))
	}()
	if s.conns != nil {
		defer s.conns.guardBody(w, r, s.bodyIdle)()
	}
	if s.proxy != nil && s.proxy(rec, r) {
		return
	}
	s.router.ServeHTTP(rec, r)
}

// statusRecorder remembers the response status for the request log. It
// passes hijacking (WebSocket upgrades) and flushing through.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (r *statusRecorder) Flush() { _ = http.NewResponseController(r.ResponseWriter).Flush() }

// Hijack implements http.Hijacker.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Handler returns the server's HTTP handler (the same one its listener
// serves), for mounting it elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// BaseURL returns the base URL clients use, such as http://127.0.0.1:41234.
func (s *Server) BaseURL() string { return s.baseURL }

// APIKey returns the first team's API key.
func (s *Server) APIKey() string { return s.apiKey }

// DataDir returns the directory holding the server's capsule data.
func (s *Server) DataDir() string { return s.dataDir }

// NewAPIKey creates a new team and returns its API key. Capsules and
// snapshots of one team are invisible (404) to the others.
func (s *Server) NewAPIKey() string {
	key := GenerateAPIKey()
	s.mu.Lock()
	s.keys[key] = teamFor(key)
	s.mu.Unlock()
	return key
}

// Close stops accepting requests, destroys every capsule, and removes the
// data directory when the server created it (or, with a caller's DataDir,
// the capsule and snapshot data unless KeepData is set). It is safe to call
// more than once.
func (s *Server) Close() error {
	s.closer.Do(func() {
		// Stalled responses go on, so that shutting down does not wait
		// for them.
		s.ClearFaults()
		var errs []error
		if s.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.http.Shutdown(ctx); err != nil {
				_ = s.http.Close()
			}
			cancel()
		}
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		errs = append(errs, s.shutdownRuntime())
		s.errs = errors.Join(errs...)
		s.log.Info("wrenn local server stopped")
	})
	return s.errs
}

func (s *Server) shutdownRuntime() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.loops.Wait()
	var errs []error
	if err := s.rt.Close(); err != nil {
		errs = append(errs, err)
	}
	s.mu.Lock()
	for _, c := range s.capsules {
		if c.Status == statusRunning || c.Status == statusPaused {
			c.Status = statusStopped
		}
	}
	s.mu.Unlock()
	switch {
	case s.cfg.KeepData:
		s.log.Info("data directory kept", "data_dir", s.dataDir)
	case s.ownsData:
		errs = append(errs, os.RemoveAll(s.dataDir))
	default:
		for _, d := range []string{"capsules", "snapshots", registryName} {
			errs = append(errs, os.RemoveAll(filepath.Join(s.dataDir, d)))
		}
	}
	return errors.Join(errs...)
}

// tempDataPrefix starts the names of temporary data directories:
// wrenn-local-<pid>-<random>.
const tempDataPrefix = "wrenn-local-"

// warmCapsules is how many capsules the server keeps booted ahead of the
// creates that take them (see sandbox.Config.Warm): a create then costs
// about a millisecond instead of a boot. The pool fills from the second
// create on and holds capsules of the last create's vcpus and memory.
const warmCapsules = 2

// removeStaleDataDirs removes the temporary data directories of servers
// whose process died without closing (killed, for instance). Their
// capsules died with them (bwrap runs with --die-with-parent). Directories
// holding a template registry were kept on purpose (KeepData) and stay.
func removeStaleDataDirs(tmp string) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), tempDataPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if _, err := os.Stat(filepath.Join(dir, registryName)); err == nil {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}
