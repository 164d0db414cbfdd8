package jupyter

import (
	"encoding/json"
	"testing"

	"github.com/gorilla/websocket"
)

// FuzzHandleKernelMessage feeds whole channel frames (envelope and content)
// to the frame handler of an execution whose request id is "req-1". It must
// never panic; only an idle status answering that request ends the
// execution, and a frame ending it is never also an error.
func FuzzHandleKernelMessage(f *testing.F) {
	for _, s := range []string{
		`{"msg_type":"stream","parent_header":{"msg_id":"req-1"},"channel":"iopub","content":{"name":"stdout","text":"hi\n"}}`,
		`{"header":{"msg_type":"execute_result"},"parent_header":{"msg_id":"req-1"},"content":{"data":{"text/plain":"2","text/html":"<b>2</b>"},"execution_count":3}}`,
		`{"msg_type":"display_data","parent_header":{"msg_id":"req-1"},"content":{"data":{"image/png":"iVBORw0KGgo="}}}`,
		`{"msg_type":"error","parent_header":{"msg_id":"req-1"},"content":{"ename":"ZeroDivisionError","evalue":"division by zero","traceback":["a","b"]}}`,
		`{"msg_type":"status","parent_header":{"msg_id":"req-1"},"content":{"execution_state":"idle"}}`,
		`{"msg_type":"status","parent_header":{"msg_id":"other"},"content":{"execution_state":"idle"}}`,
		`{"msg_type":"status","parent_header":{},"content":{"execution_state":"dead"}}`,
		`{"msg_type":"execute_reply","parent_header":{"msg_id":"req-1"},"channel":"shell","content":{"status":"ok"}}`,
		`{"msg_type":"stream","parent_header":{"msg_id":"req-1"},"content":[]}`,
		`{"parent_header":"req-1"}`, `[]`, `null`, `{`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var e Execution
		done, err := e.handle(frame{typ: websocket.TextMessage, data: []byte(data)}, "req-1", ExecuteOptions{})
		if !done {
			return
		}
		if err != nil {
			t.Errorf("handle(%q) ended the execution with an error: %v", data, err)
		}
		var m incoming
		if json.Unmarshal([]byte(data), &m) != nil || m.ParentHeader.MsgID != "req-1" {
			t.Errorf("handle(%q) ended the execution for a frame not answering req-1", data)
		}
	})
}
