package apispec

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFrameSchemas(t *testing.T) {
	v := newValidatorForTest(t)
	tests := []struct {
		op   string
		dir  Direction
		want []string
	}{
		{"execStream", FromClient, []string{"StreamAuth", "ExecStreamStart", "ExecStreamStop"}},
		{"execStream", FromServer, []string{"ExecStreamEvent"}},
		{"processStream", FromClient, []string{"StreamAuth"}},
		{"processStream", FromServer, []string{"ExecStreamEvent"}},
		{"ptySession", FromClient, []string{"StreamAuth", "PtyStart", "PtyConnect", "PtyInput", "PtyResize", "PtyKill"}},
		{"ptySession", FromServer, []string{"PtyStarted", "PtyOutput", "PtyExit", "PtyError", "PtyPing"}},
	}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.dir.String(), func(t *testing.T) {
			got, err := v.FrameSchemas(tt.op, tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("frame schemas (-want +got):\n%s", diff)
			}
			for _, name := range got {
				if v.doc.Components.Schemas[name] == nil {
					t.Errorf("frame schema %s is not defined", name)
				}
			}
		})
	}
	for _, op := range []string{"getCapsule", "noSuchOperation"} {
		if _, err := v.FrameSchemas(op, FromClient); err == nil {
			t.Errorf("FrameSchemas(%q) succeeded, want an error", op)
		}
	}
}

func TestValidateFrame(t *testing.T) {
	v := newValidatorForTest(t)
	tests := []struct {
		name        string
		op          string
		dir         Direction
		frame       string
		wantErr     string
		wantUnknown bool
	}{
		{name: "auth", op: "execStream", dir: FromClient, frame: `{"type":"auth","token":"eyJ.x.y"}`},
		{name: "auth without token", op: "ptySession", dir: FromClient, frame: `{"type":"auth"}`, wantErr: "token"},
		{name: "exec start", op: "execStream", dir: FromClient, frame: `{"type":"start","cmd":"ls","args":["-l"]}`},
		{name: "exec start without cmd", op: "execStream", dir: FromClient, frame: `{"type":"start"}`, wantErr: "cmd"},
		{name: "exec stop", op: "execStream", dir: FromClient, frame: `{"type":"stop"}`},
		{name: "exec started", op: "execStream", dir: FromServer, frame: `{"type":"start","pid":1234}`},
		{name: "exec started with pid omitted", op: "execStream", dir: FromServer, frame: `{"type":"start"}`},
		{name: "exec output", op: "execStream", dir: FromServer, frame: `{"type":"stdout","data":"hi\n"}`},
		{name: "exec exit by signal", op: "execStream", dir: FromServer, frame: `{"type":"exit","exit_code":-1}`},
		{name: "exec exit with a string code", op: "execStream", dir: FromServer, frame: `{"type":"exit","exit_code":"0"}`, wantErr: "exit_code"},
		{name: "exec unknown type", op: "execStream", dir: FromServer, frame: `{"type":"ping"}`, wantUnknown: true},
		{name: "client frame sent by the server", op: "processStream", dir: FromServer, frame: `{"type":"stop"}`, wantUnknown: true},
		{name: "process stream client sends only auth", op: "processStream", dir: FromClient, frame: `{"type":"start","cmd":"x"}`, wantUnknown: true},
		{name: "pty start with defaults", op: "ptySession", dir: FromClient, frame: `{"type":"start"}`},
		{name: "pty start full", op: "ptySession", dir: FromClient, frame: `{"type":"start","cmd":"/bin/bash","args":["-l"],"cols":120,"rows":40,"envs":{"TERM":"xterm"},"cwd":"/root"}`},
		{name: "pty start with negative cols", op: "ptySession", dir: FromClient, frame: `{"type":"start","cols":-1}`, wantErr: "cols"},
		{name: "pty connect", op: "ptySession", dir: FromClient, frame: `{"type":"connect","tag":"pty-1a2b3c4d"}`},
		{name: "pty connect without tag", op: "ptySession", dir: FromClient, frame: `{"type":"connect"}`, wantErr: "tag"},
		{name: "pty input", op: "ptySession", dir: FromClient, frame: `{"type":"input","data":"bHMK"}`},
		{name: "pty input that is not base64", op: "ptySession", dir: FromClient, frame: `{"type":"input","data":"not base64!"}`, wantErr: "data"},
		{name: "pty resize", op: "ptySession", dir: FromClient, frame: `{"type":"resize","cols":100,"rows":30}`},
		{name: "pty kill", op: "ptySession", dir: FromClient, frame: `{"type":"kill"}`},
		{name: "pty pong is not part of the protocol", op: "ptySession", dir: FromClient, frame: `{"type":"pong"}`, wantUnknown: true},
		{name: "pty started", op: "ptySession", dir: FromServer, frame: `{"type":"started","tag":"pty-1a2b3c4d","pid":42}`},
		{name: "pty output", op: "ptySession", dir: FromServer, frame: `{"type":"output","data":"G1sxbWhpG1swbQ=="}`},
		{name: "pty exit", op: "ptySession", dir: FromServer, frame: `{"type":"exit","exit_code":0}`},
		{name: "pty fatal error", op: "ptySession", dir: FromServer, frame: `{"type":"error","data":"authentication failed","fatal":true}`},
		{name: "pty error without text", op: "ptySession", dir: FromServer, frame: `{"type":"error"}`, wantErr: "data"},
		{name: "pty ping", op: "ptySession", dir: FromServer, frame: `{"type":"ping"}`},
		{name: "not JSON", op: "ptySession", dir: FromServer, frame: `ping`, wantErr: "not JSON"},
		{name: "not an object", op: "ptySession", dir: FromServer, frame: `["ping"]`, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.ValidateFrame(tt.op, tt.dir, []byte(tt.frame))
			if got := errors.Is(err, ErrUnknownFrame); got != tt.wantUnknown {
				t.Fatalf("errors.Is(err, ErrUnknownFrame) = %v, want %v (err: %v)", got, tt.wantUnknown, err)
			}
			if !tt.wantUnknown {
				checkErr(t, err, tt.wantErr)
			}
		})
	}
}
