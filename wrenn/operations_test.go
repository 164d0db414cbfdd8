package wrenn

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"git.omukk.dev/wrenn/go-sdk/gen"
)

// operation says how the facade covers one operation of openapi.yaml.
type operation struct {
	// methods are the facade methods that send it, as "Type.Method".
	methods []string
	// via is the call in this package's sources that sends it: a method
	// of the generated client ("api.ListDir") or a stream constructor
	// ("stream.StartExec"). Empty for an operation left out.
	via []string
	// leftOut says why the facade deliberately has no call for it.
	leftOut string
}

// operations lists every operation of openapi.yaml by operationId. A new
// operation in the document fails TestEveryOperationIsWrappedOrLeftOut
// until it is added here, wrapped or left out with a reason.
var operations = map[string]operation{
	"getHealth": {leftOut: "the control plane's unauthenticated liveness probe is for operators and load balancers; " +
		"a client learns the server is up from its first real call"},
	"createCapsule":     {methods: []string{"Client.CreateCapsule", "CapsulesService.Create", "Client.CreateCodeInterpreter"}, via: []string{"api.CreateCapsule"}},
	"listCapsules":      {methods: []string{"CapsulesService.List"}, via: []string{"api.ListCapsules"}},
	"getCapsuleStats":   {methods: []string{"CapsulesService.Stats"}, via: []string{"api.GetCapsuleStats"}},
	"getCapsuleUsage":   {methods: []string{"CapsulesService.Usage"}, via: []string{"api.GetCapsuleUsage"}},
	"getCapsule":        {methods: []string{"CapsulesService.Get", "Client.ConnectCapsule", "Capsule.Refresh", "Capsule.IsRunning", "Capsule.WaitReady"}, via: []string{"api.GetCapsule"}},
	"destroyCapsule":    {methods: []string{"CapsulesService.Destroy", "Capsule.Destroy"}, via: []string{"api.DestroyCapsule"}},
	"pauseCapsule":      {methods: []string{"CapsulesService.Pause", "Capsule.Pause"}, via: []string{"api.PauseCapsule"}},
	"resumeCapsule":     {methods: []string{"CapsulesService.Resume", "Capsule.Resume"}, via: []string{"api.ResumeCapsule"}},
	"pingCapsule":       {methods: []string{"CapsulesService.Ping", "Capsule.Ping", "Capsule.KeepAlive"}, via: []string{"api.PingCapsule"}},
	"getCapsuleMetrics": {methods: []string{"CapsulesService.Metrics"}, via: []string{"api.GetCapsuleMetrics"}},
	"execCommand":       {methods: []string{"Commands.Run", "Commands.Start", "Git.Status", "Git.Clone"}, via: []string{"api.ExecCommand"}},
	"execStream":        {methods: []string{"Commands.Stream"}, via: []string{"stream.StartExec"}},
	"ptySession":        {methods: []string{"Capsule.PTY", "Capsule.ConnectPTY"}, via: []string{"stream.StartPTY", "stream.ConnectPTY"}},
	"listProcesses":     {methods: []string{"Commands.List"}, via: []string{"api.ListProcesses"}},
	"killProcess":       {methods: []string{"Commands.Kill", "Commands.KillTag", "Process.Kill", "CommandStream.Kill", "PTY.Kill"}, via: []string{"api.KillProcess"}},
	"processStream":     {methods: []string{"Commands.Connect", "Commands.ConnectTag", "Process.Attach"}, via: []string{"stream.AttachProcess"}},
	"writeFile":         {methods: []string{"Files.Write", "Files.WriteString"}, via: []string{"api.WriteFileWithBody"}},
	"readFile":          {methods: []string{"Files.Read", "Files.ReadBytes"}, via: []string{"api.ReadFile"}},
	"listDir":           {methods: []string{"Files.List", "Files.Stat", "Files.Exists"}, via: []string{"api.ListDir"}},
	"makeDir":           {methods: []string{"Files.MakeDir"}, via: []string{"api.MakeDir"}},
	"removePath":        {methods: []string{"Files.Remove"}, via: []string{"api.RemovePath"}},
	"streamWriteFile":   {methods: []string{"Files.Upload", "Files.WriteFrom"}, via: []string{"api.StreamWriteFileWithBody"}},
	"streamReadFile":    {methods: []string{"Files.Download"}, via: []string{"api.StreamReadFile"}},
	"createSnapshot":    {methods: []string{"SnapshotsService.Create", "Capsule.CreateSnapshot"}, via: []string{"api.CreateSnapshot"}},
	"listSnapshots":     {methods: []string{"SnapshotsService.List"}, via: []string{"api.ListSnapshots"}},
	"deleteSnapshot":    {methods: []string{"SnapshotsService.Delete"}, via: []string{"api.DeleteSnapshot"}},
}

// facadeTypes are the types whose methods operations may name.
var facadeTypes = map[string]reflect.Type{
	"Client":           reflect.TypeFor[*Client](),
	"Capsule":          reflect.TypeFor[*Capsule](),
	"CapsulesService":  reflect.TypeFor[*CapsulesService](),
	"SnapshotsService": reflect.TypeFor[*SnapshotsService](),
	"Commands":         reflect.TypeFor[*Commands](),
	"CommandStream":    reflect.TypeFor[*CommandStream](),
	"Process":          reflect.TypeFor[*Process](),
	"PTY":              reflect.TypeFor[*PTY](),
	"Files":            reflect.TypeFor[*Files](),
	"Git":              reflect.TypeFor[*Git](),
}

// TestEveryOperationIsWrappedOrLeftOut checks the table above against
// openapi.yaml: every operation is listed, every listed operation exists,
// every wrapped one names facade methods that exist and a call that this
// package's sources make (or a method value they pass), and every one left out says why.
func TestEveryOperationIsWrappedOrLeftOut(t *testing.T) {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	var inSpec []string
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
				continue
			}
			inSpec = append(inSpec, op.OperationID)
			if _, ok := operations[op.OperationID]; !ok {
				t.Errorf("operation %s (%s %s) is neither wrapped by a facade method nor left out: add it to operations", op.OperationID, method, path)
			}
		}
	}
	src := packageSources(t)
	for id, op := range operations {
		if !slices.Contains(inSpec, id) {
			t.Errorf("operations lists %s, which openapi.yaml does not have", id)
		}
		switch {
		case op.leftOut != "" && (len(op.methods) > 0 || len(op.via) > 0):
			t.Errorf("%s is both left out and wrapped", id)
		case op.leftOut != "":
			name := "api." + strings.ToUpper(id[:1]) + id[1:]
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `(WithBody)?\b`).MatchString(src) {
				t.Errorf("%s is listed as left out, but the sources use %s", id, name)
			}
		case len(op.methods) == 0 || len(op.via) == 0:
			t.Errorf("%s names no facade method or no call", id)
		}
		for _, m := range op.methods {
			typ, name, _ := strings.Cut(m, ".")
			rt, ok := facadeTypes[typ]
			if !ok {
				t.Errorf("%s: %s is not a facade type", id, typ)
				continue
			}
			if _, ok := rt.MethodByName(name); !ok {
				t.Errorf("%s: %s has no method %s", id, typ, name)
			}
		}
		for _, v := range op.via {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(v) + `\b`).MatchString(src) {
				t.Errorf("%s: no source file of package wrenn calls %s", id, v)
			}
		}
	}
}

// packageSources returns this package's non-test Go sources, concatenated.
func packageSources(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}
