package wrenntest

import (
	"net/http"
	"slices"
	"strings"
)

// router dispatches on method and path the way the real control plane's
// router does: an unknown path is a plain-text "404 page not found", a known
// path with another method is an empty 405 with an Allow header (both before
// any authentication), and one trailing slash is accepted only where the
// real router mounts a sub-router: /v1/capsules/, /v1/capsules/{id}/ and
// /v1/snapshots/ answer as without it, while any other path with a trailing
// slash (POST /v1/capsules/{id}/exec/, for instance) is the plain-text 404.
//
// Patterns are slash-separated; a segment written {name} matches any one
// segment, available to the handler as r.PathValue(name). Literal segments
// win over parameters, so /v1/capsules/stats is not a capsule id.
type router struct {
	routes []*routeEntry
	// intercept, when set, gets every routed request with its route's
	// pattern and handler instead of the handler (fault injection).
	intercept func(w http.ResponseWriter, r *http.Request, pattern string, h http.Handler)
}

// mountPoints are the patterns at which the real router mounts a
// sub-router, whose "/" route also answers the path with a trailing slash.
var mountPoints = map[string]bool{
	"/v1/capsules":      true,
	"/v1/capsules/{id}": true,
	"/v1/snapshots":     true,
}

type routeEntry struct {
	pattern  string
	segs     []string
	handlers map[string]http.Handler
}

// handle registers h for method and pattern.
func (rt *router) handle(method, pattern string, h http.Handler) {
	for _, e := range rt.routes {
		if e.pattern == pattern {
			e.handlers[method] = h
			return
		}
	}
	rt.routes = append(rt.routes, &routeEntry{
		pattern:  pattern,
		segs:     strings.Split(strings.Trim(pattern, "/"), "/"),
		handlers: map[string]http.Handler{method: h},
	})
}

// match finds the route for path, preferring literal segments.
func (rt *router) match(path string) (*routeEntry, map[string]string) {
	slash := len(path) > 1 && strings.HasSuffix(path, "/")
	if slash {
		path = strings.TrimSuffix(path, "/")
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var best *routeEntry
	var bestVals map[string]string
	bestScore := -1
	for _, e := range rt.routes {
		if len(e.segs) != len(segs) {
			continue
		}
		score := 0
		vals := map[string]string{}
		ok := true
		for i, s := range e.segs {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				if segs[i] == "" {
					ok = false
					break
				}
				vals[s[1:len(s)-1]] = segs[i]
				continue
			}
			if s != segs[i] {
				ok = false
				break
			}
			score++
		}
		if ok && slash && !mountPoints[e.pattern] {
			ok = false
		}
		if ok && score > bestScore {
			best, bestVals, bestScore = e, vals, score
		}
	}
	return best, bestVals
}

// ServeHTTP implements http.Handler.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, vals := rt.match(r.URL.Path)
	if e == nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	h, ok := e.handlers[r.Method]
	if !ok {
		methods := make([]string, 0, len(e.handlers))
		for m := range e.handlers {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		w.Header().Set("Allow", strings.Join(methods, ", "))
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	for k, v := range vals {
		r.SetPathValue(k, v)
	}
	if rt.intercept != nil {
		rt.intercept(w, r, e.pattern, h)
		return
	}
	h.ServeHTTP(w, r)
}
