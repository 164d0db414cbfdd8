// Command git creates a repository in a capsule, commits to it and reads
// its status, with the capsule's git.
//
// With WRENN_API_KEY set it uses the Wrenn cloud (or WRENN_BASE_URL).
// Without it, it starts a local Wrenn server in this process (Linux, needs
// the bubblewrap and git packages) and uses that.
//
//	go run ./examples/git
package main

import (
	"context"
	"io"
	"strings"
	"time"

	"git.omukk.dev/wrenn/go-sdk/examples/internal/walkthrough"
	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

func main() { walkthrough.Main("git", run) }

// run performs the walk-through, writing its narration to out.
func run(ctx context.Context, out io.Writer) (err error) {
	n := walkthrough.Narrate(out)

	client, closeLocal, err := walkthrough.Client(out)
	if err != nil {
		return err
	}
	defer closeLocal()

	n.Step("Creating a capsule")
	cp, err := client.CreateCapsule(ctx, wrenn.CreateCapsuleParams{Timeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer n.Finally(ctx, &err, cp.Destroy, "Destroying capsule %s", cp.ID())

	const dir = "/root/project"
	repo := wrenn.GitOptions{Cwd: dir}
	status := func() error {
		st, err := cp.Git.Status(ctx, repo)
		if err != nil {
			return err
		}
		n.Show("branch %s, clean %v, %d file(s)", st.Branch, st.IsClean(), len(st.Files))
		for _, f := range st.Files {
			n.Show("  %-10s staged %-5v %s", f.Kind, f.Staged, f.Path)
		}
		return nil
	}

	n.Step("Initialising a repository in %s", dir)
	if _, err := cp.Git.Init(ctx, dir, wrenn.GitInitOptions{InitialBranch: "main"}); err != nil {
		return err
	}
	if err := cp.Git.ConfigureUser(ctx, "Ada Example", "ada@example.com", wrenn.GitConfigOptions{Scope: wrenn.GitScopeLocal, Cwd: dir}); err != nil {
		return err
	}

	n.Step("Writing files")
	if err := cp.Files.WriteString(ctx, dir+"/README.md", "# project\n"); err != nil {
		return err
	}
	if err := cp.Files.WriteString(ctx, dir+"/main.py", "print('hello')\n"); err != nil {
		return err
	}
	if err := status(); err != nil {
		return err
	}

	n.Step("Staging and committing")
	if _, err := cp.Git.Add(ctx, wrenn.GitAddOptions{All: true, Cwd: dir}); err != nil {
		return err
	}
	if err := status(); err != nil {
		return err
	}
	if _, err := cp.Git.Commit(ctx, "First commit", wrenn.GitCommitOptions{Cwd: dir}); err != nil {
		return err
	}
	if err := status(); err != nil {
		return err
	}

	n.Step("Changing a file")
	if err := cp.Files.WriteString(ctx, dir+"/README.md", "# project\n\nNow with a description.\n"); err != nil {
		return err
	}
	if err := status(); err != nil {
		return err
	}

	n.Step("History")
	res, err := cp.Commands.Run(ctx, "git -C "+dir+" log --format='%h %an: %s'", wrenn.RunOptions{})
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(res.StdoutString()), "\n") {
		n.Show("%s", line)
	}
	return nil
}
