package wrenn

import (
	"fmt"
	"net/http"
	"path"
	"strings"
)

// dirListing answers the listing the SDK makes to look up a working
// directory: dir is there, as a directory.
func dirListing(dir string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/files/list") {
			http.NotFound(w, r)
			return
		}
		reply(w, http.StatusOK, fmt.Sprintf(`{"entries":[{"name":%q,"path":%q,"type":"directory","size":4096,"mode":493,"permissions":"drwxr-xr-x","owner":"root","group":"root","modified_at":0}]}`, path.Base(dir), dir))
	}
}
