// Command httpgit serves the bare git repositories under a directory over
// git's smart HTTP protocol (git http-backend run through CGI), with HTTP
// basic authentication. The git facade's end-to-end tests build it, copy it
// into a capsule and run it there, so that git inside the capsule has an
// authenticated HTTP remote on the capsule's own loopback interface.
//
// It listens on 127.0.0.1 on a port chosen by the system and writes that
// port, in decimal, to the file named by -portfile (which may be a FIFO that
// the test reads) before it starts serving.
package main

import (
	"crypto/subtle"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"strconv"
)

func main() {
	root := flag.String("root", "", "directory holding the bare repositories")
	user := flag.String("user", "", "the only accepted username")
	pass := flag.String("pass", "", "the only accepted password")
	portFile := flag.String("portfile", "", "file to write the listening port to")
	flag.Parse()
	if *root == "" || *user == "" || *portFile == "" {
		log.Fatal("httpgit: -root, -user and -portfile are required")
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		log.Fatalf("httpgit: %v", err)
	}
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		// REMOTE_USER tells git http-backend that the client authenticated,
		// which enables pushes (receive-pack).
		Env: []string{"GIT_PROJECT_ROOT=" + *root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + *user},
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || !equal(u, *user) || !equal(p, *pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="httpgit"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("httpgit: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := os.WriteFile(*portFile, []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		log.Fatalf("httpgit: writing the port: %v", err)
	}
	fmt.Fprintf(os.Stderr, "httpgit: serving %s on 127.0.0.1:%d\n", *root, port)
	log.Fatal(http.Serve(ln, handler))
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
