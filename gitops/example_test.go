package gitops_test

import (
	"fmt"
	"log"

	"git.omukk.dev/wrenn/go-sdk/gitops"
)

// A command line for a capsule: the working directory and environment go
// into the script, because the server ignores them for foreground commands.
func ExampleScript() {
	argv, err := gitops.CommitArgs(gitops.CommitOptions{Message: "it's done"})
	if err != nil {
		log.Fatal(err)
	}
	script, err := gitops.Script(argv, gitops.ScriptOptions{
		Dir: "/work/repo",
		Env: map[string]string{"GIT_TERMINAL_PROMPT": "0"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(script)
	// Output:
	// cd -- /work/repo && export GIT_TERMINAL_PROMPT=0 && exec git commit '--message=it'\''s done'
}

// Authenticating a clone without writing the credentials anywhere: git reads
// them from the environment through a one-shot credential helper.
func ExampleWithCredentials() {
	argv, err := gitops.CloneArgs(gitops.CloneOptions{URL: "https://git.example.test/org/repo.git", Dir: "repo"})
	if err != nil {
		log.Fatal(err)
	}
	argv, env, err := gitops.WithCredentials(argv, gitops.Credentials{Username: "bot", Password: "t0ken"})
	if err != nil {
		log.Fatal(err)
	}
	env["GIT_TERMINAL_PROMPT"] = "0"
	script, err := gitops.Script(argv, gitops.ScriptOptions{Dir: "/work", Env: env})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(script)
	// Output:
	// cd -- /work && export GIT_TERMINAL_PROMPT=0 WRENN_GIT_PASSWORD=t0ken WRENN_GIT_USERNAME=bot && exec git -c 'credential.helper=' -c 'credential.helper=!f() { test "$1" = get || return 0; printf '\''username=%s\npassword=%s\n'\'' "$WRENN_GIT_USERNAME" "$WRENN_GIT_PASSWORD"; }; f' clone -- https://git.example.test/org/repo.git repo
}

func ExampleParseStatus() {
	st, err := gitops.ParseStatus("## main...origin/main [ahead 1]\nM  go.mod\nUU main.go\n?? \"caf\\303\\251.txt\"\n")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Branch, st.Upstream, st.Ahead, len(st.Files))
	for _, f := range st.Files {
		fmt.Printf("%c%c %-10s %s staged=%v\n", f.Index, f.Worktree, f.Kind, f.Path, f.Staged)
	}
	// Output:
	// main origin/main 1 3
	// M  modified   go.mod staged=true
	// UU conflict   main.go staged=false
	// ?? untracked  café.txt staged=false
}
