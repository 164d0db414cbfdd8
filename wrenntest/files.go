package wrenntest

import (
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"syscall"

	"git.omukk.dev/wrenn/go-sdk/wrenntest/internal/sandbox"
)

const (
	sigKill = syscall.SIGKILL
	sigTerm = syscall.SIGTERM
)

// maxUpload is the whole-body limit of the non-streaming upload (100 MiB).
const maxUpload = 100 << 20

// uploadLimit returns the body limit of the upload routes, and whether the
// streaming route has it too (only when [Config.UploadLimit] is set).
func (s *Server) uploadLimit() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.UploadLimit > 0 {
		return s.cfg.UploadLimit, true
	}
	return maxUpload, false
}

// tooLarge answers an upload over limit as the real server answers one
// over its 100 MiB: 413 too_large "file exceeds 100 MB limit".
func tooLarge(w http.ResponseWriter, limit int64) {
	msg := "file exceeds 100 MB limit"
	if limit != maxUpload {
		msg = "file exceeds " + strconv.FormatInt(limit, 10) + " byte limit"
	}
	writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, msg)
}

// maxUploadInMemory is how much of a non-streaming upload is held in
// memory; the rest of the file waits in a temporary file on disk.
const maxUploadInMemory = 1 << 20

// maxSizelessRead bounds the read of a file that reports a size of 0.
const maxSizelessRead = 64 << 20

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

type pathRequest struct {
	Path  string `json:"path"`
	Depth uint32 `json:"depth"`
}

// fileBox runs the checks shared by the file routes (id, lookup, running
// state, JSON body with a path) and returns the sandbox and request.
func (s *Server) fileBox(w http.ResponseWriter, r *http.Request, team string) (*sandbox.Capsule, *pathRequest) {
	c := s.capsule(w, r, team, byData)
	if c == nil {
		return nil, nil
	}
	box := s.running(w, c, false, false)
	if box == nil {
		return nil, nil
	}
	var req pathRequest
	if !decodeJSON(w, r, &req) {
		return nil, nil
	}
	if req.Path == "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "path is required")
		return nil, nil
	}
	return box, &req
}

// fileError maps a file operation failure the way the real server's agent
// layers do: everything but the cases below is 502 agent_error (a missing
// path included).
func (s *Server) fileError(w http.ResponseWriter, what string, err error) {
	s.agentError(w, what, err)
}

func (s *Server) fileRead(w http.ResponseWriter, r *http.Request, team string) {
	box, req := s.fileBox(w, r, team)
	if box == nil {
		return
	}
	f, err := box.OpenFile(req.Path)
	if err != nil {
		s.fileError(w, "read file", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.fileError(w, "read file", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if fi.Size() == 0 {
		// Files such as those of /proc report no size: read them whole,
		// as the real server reads every file.
		data, err := io.ReadAll(io.LimitReader(f, maxSizelessRead))
		if err != nil {
			s.fileError(w, "read file", err)
			return
		}
		w.Header().Set("Content-Length", itoa64(int64(len(data))))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data)
		return
	}
	// The real server buffers the file; sending it with its length is
	// equivalent on the wire.
	w.Header().Set("Content-Length", itoa64(fi.Size()))
	w.WriteHeader(http.StatusOK)
	_, _ = io.CopyN(w, f, fi.Size())
}

func (s *Server) fileStreamRead(w http.ResponseWriter, r *http.Request, team string) {
	box, req := s.fileBox(w, r, team)
	if box == nil {
		return
	}
	// As upstream, the response is committed before the read is known to
	// work: a missing file or a directory is 200 with an empty body.
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	f, err := box.OpenFile(req.Path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	flusher := http.NewResponseController(w)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = flusher.Flush()
		}
		if err != nil {
			return
		}
	}
}

func (s *Server) fileList(w http.ResponseWriter, r *http.Request, team string) {
	box, req := s.fileBox(w, r, team)
	if box == nil {
		return
	}
	entries, err := box.List(req.Path, req.Depth)
	if err != nil {
		s.fileError(w, "list directory", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]sandbox.FileEntry{"entries": entries})
}

func (s *Server) fileMkdir(w http.ResponseWriter, r *http.Request, team string) {
	box, req := s.fileBox(w, r, team)
	if box == nil {
		return
	}
	e, err := box.Mkdir(req.Path)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]sandbox.FileEntry{"entry": e})
	case errors.Is(err, fs.ErrExist):
		writeError(w, http.StatusConflict, codeConflict, "already_exists: directory already exists: "+sandbox.CapsulePath(req.Path))
	case errors.Is(err, sandbox.ErrNotDir):
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid_argument: path exists and is not a directory: "+sandbox.CapsulePath(req.Path))
	default:
		s.fileError(w, "make directory", err)
	}
}

func (s *Server) fileRemove(w http.ResponseWriter, r *http.Request, team string) {
	box, req := s.fileBox(w, r, team)
	if box == nil {
		return
	}
	if err := box.Remove(req.Path); err != nil {
		s.fileError(w, "remove", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// uploadBox runs the checks of the two upload routes before the body is
// read: id, lookup, running state.
func (s *Server) uploadBox(w http.ResponseWriter, r *http.Request, team string) *sandbox.Capsule {
	c := s.capsule(w, r, team, byData)
	if c == nil {
		return nil
	}
	return s.running(w, c, false, false)
}

func (s *Server) fileWrite(w http.ResponseWriter, r *http.Request, team string) {
	box := s.uploadBox(w, r, team)
	if box == nil {
		return
	}
	limit, _ := s.uploadLimit()
	if r.ContentLength > limit {
		tooLarge(w, limit)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(maxUploadInMemory); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			tooLarge(w, limit)
			return
		}
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "expected multipart/form-data")
		return
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	path := r.FormValue("path")
	if path == "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "path field is required")
		return
	}
	f, _, err := r.FormFile("file")
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "file field is required")
		return
	}
	defer f.Close()
	if _, err := box.WriteFile(path, f); err != nil {
		s.fileError(w, "write file", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fileStreamWrite streams the file part straight into the capsule with
// constant memory and no size limit. The path part must come first; unlike
// upstream (which then writes an empty file and answers 204), a file part
// before the path part is a clean 400.
func (s *Server) fileStreamWrite(w http.ResponseWriter, r *http.Request, team string) {
	box := s.uploadBox(w, r, team)
	if box == nil {
		return
	}
	limit, limited := s.uploadLimit()
	if limited {
		if r.ContentLength > limit {
			tooLarge(w, limit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "expected multipart/form-data with boundary")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	path := ""
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if errors.As(err, new(*http.MaxBytesError)) {
			tooLarge(w, limit)
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid multipart body")
			return
		}
		switch part.FormName() {
		case "path":
			b, err := readAllLimited(part, 4096)
			if err != nil {
				writeError(w, http.StatusBadRequest, codeInvalidRequest, "invalid path field")
				return
			}
			path = string(b)
		case "file":
			if path == "" {
				writeError(w, http.StatusBadRequest, codeInvalidRequest, "path field is required before the file field")
				return
			}
			if _, err := box.WriteFile(path, part); err != nil {
				if errors.As(err, new(*http.MaxBytesError)) {
					// What a proxy in front would have kept back: the
					// part written is removed, the answer is 413.
					_ = box.Remove(path)
					tooLarge(w, limit)
					return
				}
				s.fileError(w, "write file", err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_ = part.Close()
	}
	if path == "" {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "path field is required")
		return
	}
	writeError(w, http.StatusBadRequest, codeInvalidRequest, "file field is required")
}
