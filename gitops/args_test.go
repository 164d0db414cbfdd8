package gitops

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type builderCase struct {
	name      string
	build     func() ([]string, error)
	want      []string
	wantField string // non-empty: a *ValidationError for this field is expected
}

func runBuilderCases(t *testing.T, cases []builderCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.build()
			if tc.wantField != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want *ValidationError for %s", err, tc.wantField)
				}
				if !errors.Is(err, ErrInvalidArgument) {
					t.Errorf("errors.Is(%v, ErrInvalidArgument) = false", err)
				}
				if ve.Field != tc.wantField {
					t.Errorf("Field = %q, want %q (err %v)", ve.Field, tc.wantField, err)
				}
				if got != nil {
					t.Errorf("argv = %q, want nil on error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("argv mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCloneArgs(t *testing.T) {
	runBuilderCases(t, []builderCase{
		{"url only", func() ([]string, error) { return CloneArgs(CloneOptions{URL: "https://h/r.git"}) },
			[]string{"git", "clone", "--", "https://h/r.git"}, ""},
		{"branch depth and dir", func() ([]string, error) {
			return CloneArgs(CloneOptions{URL: "u", Dir: "d", Branch: "dev", Depth: 3})
		}, []string{"git", "clone", "--branch=dev", "--single-branch", "--depth=3", "--", "u", "d"}, ""},
		{"url looking like an option stays an operand", func() ([]string, error) {
			return CloneArgs(CloneOptions{URL: "--upload-pack=touch x", Dir: "-d"})
		}, []string{"git", "clone", "--", "--upload-pack=touch x", "-d"}, ""},
		{"empty url", func() ([]string, error) { return CloneArgs(CloneOptions{}) }, nil, "URL"},
		{"nul in url", func() ([]string, error) { return CloneArgs(CloneOptions{URL: "a\x00b"}) }, nil, "URL"},
		{"nul in dir", func() ([]string, error) { return CloneArgs(CloneOptions{URL: "u", Dir: "\x00"}) }, nil, "Dir"},
		{"branch starting with dash", func() ([]string, error) {
			return CloneArgs(CloneOptions{URL: "u", Branch: "-x"})
		}, nil, "Branch"},
		{"negative depth", func() ([]string, error) { return CloneArgs(CloneOptions{URL: "u", Depth: -1}) }, nil, "Depth"},
	})
}

func TestCloneDir(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.test/org/repo.git":  "repo",
		"https://example.test/org/repo":      "repo",
		"https://example.test/org/repo/":     "repo",
		"https://example.test/org/repo/.git": "repo",
		"git@example.test:org/tool.git":      "tool",
		"/srv/git/project.git/":              "project",
		"bundle.bundle":                      "bundle",
		"..":                                 "",
	} {
		if got := cloneDir(in); got != want {
			t.Errorf("cloneDir(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInitAddCommitArgs(t *testing.T) {
	runBuilderCases(t, []builderCase{
		{"init defaults to current directory", func() ([]string, error) { return InitArgs(InitOptions{}) },
			[]string{"git", "init", "--", "."}, ""},
		{"init bare with initial branch", func() ([]string, error) {
			return InitArgs(InitOptions{Path: "-repo", Bare: true, InitialBranch: "main"})
		}, []string{"git", "init", "--initial-branch=main", "--bare", "--", "-repo"}, ""},
		{"init initial branch with dash", func() ([]string, error) {
			return InitArgs(InitOptions{InitialBranch: "-b"})
		}, nil, "InitialBranch"},
		{"init nul path", func() ([]string, error) { return InitArgs(InitOptions{Path: "\x00"}) }, nil, "Path"},
		{"add without paths stages current directory", func() ([]string, error) { return AddArgs(AddOptions{}) },
			[]string{"git", "add", "."}, ""},
		{"add all", func() ([]string, error) { return AddArgs(AddOptions{All: true}) },
			[]string{"git", "add", "-A"}, ""},
		{"add paths after separator, all ignored", func() ([]string, error) {
			return AddArgs(AddOptions{Paths: []string{"-f", "a b"}, All: true})
		}, []string{"git", "add", "--", "-f", "a b"}, ""},
		{"add empty path", func() ([]string, error) { return AddArgs(AddOptions{Paths: []string{"a", ""}}) },
			nil, "Paths[1]"},
		{"commit message attached to flag", func() ([]string, error) {
			return CommitArgs(CommitOptions{Message: "-m looks like a flag"})
		}, []string{"git", "commit", "--message=-m looks like a flag"}, ""},
		{"commit with author and allow empty", func() ([]string, error) {
			return CommitArgs(CommitOptions{Message: "m", AllowEmpty: true, AuthorName: "A = B", AuthorEmail: "a@b"})
		}, []string{"git", "-c", "user.name=A = B", "-c", "user.email=a@b", "commit", "--message=m", "--allow-empty"}, ""},
		{"commit empty message", func() ([]string, error) { return CommitArgs(CommitOptions{}) }, nil, "Message"},
		{"commit author name with newline", func() ([]string, error) {
			return CommitArgs(CommitOptions{Message: "m", AuthorName: "a\nb"})
		}, nil, "AuthorName"},
		{"commit author email with angle bracket", func() ([]string, error) {
			return CommitArgs(CommitOptions{Message: "m", AuthorEmail: "<a@b>"})
		}, nil, "AuthorEmail"},
	})
}

func TestPushPullArgs(t *testing.T) {
	runBuilderCases(t, []builderCase{
		{"push defaults to origin", func() ([]string, error) { return PushArgs(PushOptions{}) },
			[]string{"git", "push", "--", "origin"}, ""},
		{"push all flags", func() ([]string, error) {
			return PushArgs(PushOptions{Remote: "up", Branch: "main", Force: true, SetUpstream: true})
		}, []string{"git", "push", "--force", "--set-upstream", "--", "up", "main"}, ""},
		{"push refspec with dash stays an operand", func() ([]string, error) {
			return PushArgs(PushOptions{Remote: "-o", Branch: "--all"})
		}, []string{"git", "push", "--", "-o", "--all"}, ""},
		{"push nul branch", func() ([]string, error) { return PushArgs(PushOptions{Branch: "\x00"}) }, nil, "Branch"},
		{"push nul remote", func() ([]string, error) { return PushArgs(PushOptions{Remote: "\x00"}) }, nil, "Remote"},
		{"pull defaults to origin", func() ([]string, error) { return PullArgs(PullOptions{}) },
			[]string{"git", "pull", "--", "origin"}, ""},
		{"pull all flags", func() ([]string, error) {
			return PullArgs(PullOptions{Remote: "up", Branch: "dev", Rebase: true, FFOnly: true})
		}, []string{"git", "pull", "--rebase", "--ff-only", "--", "up", "dev"}, ""},
		{"pull nul remote", func() ([]string, error) { return PullArgs(PullOptions{Remote: "\x00"}) }, nil, "Remote"},
		{"pull nul branch", func() ([]string, error) { return PullArgs(PullOptions{Branch: "\x00"}) }, nil, "Branch"},
		{"status", func() ([]string, error) { return StatusArgs(), nil },
			[]string{"git", "status", "--porcelain=v1", "--branch"}, ""},
		{"branches uses a real tab", func() ([]string, error) { return BranchesArgs(), nil },
			[]string{"git", "branch", "--format=%(refname:short)\t%(HEAD)"}, ""},
	})
}

func TestBranchAndRemoteArgs(t *testing.T) {
	runBuilderCases(t, []builderCase{
		{"create branch", func() ([]string, error) { return CreateBranchArgs(CreateBranchOptions{Name: "feat"}) },
			[]string{"git", "checkout", "-b", "feat", "--"}, ""},
		{"create branch from start point", func() ([]string, error) {
			return CreateBranchArgs(CreateBranchOptions{Name: "feat", StartPoint: "HEAD~1"})
		}, []string{"git", "checkout", "-b", "feat", "HEAD~1", "--"}, ""},
		{"create branch empty name", func() ([]string, error) { return CreateBranchArgs(CreateBranchOptions{}) },
			nil, "Name"},
		{"create branch name with dash", func() ([]string, error) {
			return CreateBranchArgs(CreateBranchOptions{Name: "-f"})
		}, nil, "Name"},
		{"create branch start point with dash", func() ([]string, error) {
			return CreateBranchArgs(CreateBranchOptions{Name: "x", StartPoint: "--orphan"})
		}, nil, "StartPoint"},
		{"checkout treats name as revision", func() ([]string, error) { return CheckoutArgs(CheckoutOptions{Name: "main"}) },
			[]string{"git", "checkout", "main", "--"}, ""},
		{"checkout empty name", func() ([]string, error) { return CheckoutArgs(CheckoutOptions{}) }, nil, "Name"},
		{"checkout name with dash", func() ([]string, error) { return CheckoutArgs(CheckoutOptions{Name: "-"}) }, nil, "Name"},
		{"delete branch", func() ([]string, error) { return DeleteBranchArgs(DeleteBranchOptions{Name: "-x"}) },
			[]string{"git", "branch", "-d", "--", "-x"}, ""},
		{"force delete branch", func() ([]string, error) {
			return DeleteBranchArgs(DeleteBranchOptions{Name: "x", Force: true})
		}, []string{"git", "branch", "-D", "--", "x"}, ""},
		{"delete branch empty name", func() ([]string, error) { return DeleteBranchArgs(DeleteBranchOptions{}) }, nil, "Name"},
		{"remote add", func() ([]string, error) { return RemoteAddArgs(RemoteAddOptions{Name: "up", URL: "/srv/r"}) },
			[]string{"git", "remote", "add", "--", "up", "/srv/r"}, ""},
		{"remote add and fetch", func() ([]string, error) {
			return RemoteAddArgs(RemoteAddOptions{Name: "up", URL: "u", Fetch: true})
		}, []string{"git", "remote", "add", "-f", "--", "up", "u"}, ""},
		{"remote add empty name", func() ([]string, error) { return RemoteAddArgs(RemoteAddOptions{URL: "u"}) }, nil, "Name"},
		{"remote add empty url", func() ([]string, error) { return RemoteAddArgs(RemoteAddOptions{Name: "n"}) }, nil, "URL"},
		{"remote get-url defaults to origin", func() ([]string, error) { return RemoteGetURLArgs(RemoteGetURLOptions{}) },
			[]string{"git", "remote", "get-url", "--", "origin"}, ""},
		{"remote get-url named", func() ([]string, error) { return RemoteGetURLArgs(RemoteGetURLOptions{Name: "up"}) },
			[]string{"git", "remote", "get-url", "--", "up"}, ""},
		{"remote get-url nul", func() ([]string, error) { return RemoteGetURLArgs(RemoteGetURLOptions{Name: "\x00"}) },
			nil, "Name"},
		{"remote set-url", func() ([]string, error) { return RemoteSetURLArgs(RemoteSetURLOptions{Name: "up", URL: "u"}) },
			[]string{"git", "remote", "set-url", "--", "up", "u"}, ""},
		{"remote set-url defaults to origin", func() ([]string, error) { return RemoteSetURLArgs(RemoteSetURLOptions{URL: "u"}) },
			[]string{"git", "remote", "set-url", "--", "origin", "u"}, ""},
		{"remote set-url empty url", func() ([]string, error) { return RemoteSetURLArgs(RemoteSetURLOptions{Name: "o"}) },
			nil, "URL"},
		{"remote set-url nul name", func() ([]string, error) {
			return RemoteSetURLArgs(RemoteSetURLOptions{Name: "\x00", URL: "u"})
		}, nil, "Name"},
	})
}

func TestResetRestoreArgs(t *testing.T) {
	runBuilderCases(t, []builderCase{
		{"reset plain", func() ([]string, error) { return ResetArgs(ResetOptions{}) },
			[]string{"git", "reset", "--"}, ""},
		{"reset hard to ref", func() ([]string, error) { return ResetArgs(ResetOptions{Mode: ResetHard, Ref: "HEAD~1"}) },
			[]string{"git", "reset", "--hard", "HEAD~1", "--"}, ""},
		{"reset paths", func() ([]string, error) {
			return ResetArgs(ResetOptions{Ref: "main", Paths: []string{"a", "-b"}})
		}, []string{"git", "reset", "main", "--", "a", "-b"}, ""},
		{"reset every mode", func() ([]string, error) {
			var all []string
			for _, m := range []ResetMode{ResetSoft, ResetMixed, ResetHard, ResetMerge, ResetKeep} {
				argv, err := ResetArgs(ResetOptions{Mode: m})
				if err != nil {
					return nil, err
				}
				all = append(all, argv[2])
			}
			return all, nil
		}, []string{"--soft", "--mixed", "--hard", "--merge", "--keep"}, ""},
		{"reset unknown mode", func() ([]string, error) { return ResetArgs(ResetOptions{Mode: "HARD"}) }, nil, "Mode"},
		{"reset mode with paths", func() ([]string, error) {
			return ResetArgs(ResetOptions{Mode: ResetSoft, Paths: []string{"a"}})
		}, nil, "Mode"},
		{"reset ref with dash", func() ([]string, error) { return ResetArgs(ResetOptions{Ref: "--hard"}) }, nil, "Ref"},
		{"reset empty path", func() ([]string, error) { return ResetArgs(ResetOptions{Paths: []string{""}}) }, nil, "Paths[0]"},
		{"restore assumes worktree", func() ([]string, error) { return RestoreArgs(RestoreOptions{Paths: []string{"a"}}) },
			[]string{"git", "restore", "--worktree", "--", "a"}, ""},
		{"restore staged only", func() ([]string, error) {
			return RestoreArgs(RestoreOptions{Paths: []string{"a"}, Staged: true})
		}, []string{"git", "restore", "--staged", "--", "a"}, ""},
		{"restore both from source", func() ([]string, error) {
			return RestoreArgs(RestoreOptions{Paths: []string{"a", "-b"}, Staged: true, Worktree: true, Source: "-x"})
		}, []string{"git", "restore", "--worktree", "--staged", "--source=-x", "--", "a", "-b"}, ""},
		{"restore no paths", func() ([]string, error) { return RestoreArgs(RestoreOptions{Staged: true}) }, nil, "Paths"},
		{"restore empty path", func() ([]string, error) { return RestoreArgs(RestoreOptions{Paths: []string{""}}) },
			nil, "Paths[0]"},
		{"restore nul source", func() ([]string, error) {
			return RestoreArgs(RestoreOptions{Paths: []string{"a"}, Source: "\x00"})
		}, nil, "Source"},
	})
}

func TestConfigArgs(t *testing.T) {
	runBuilderCases(t, []builderCase{
		{"set defaults to local", func() ([]string, error) {
			return ConfigSetArgs(ConfigSetOptions{Key: "user.name", Value: "N"})
		}, []string{"git", "config", "--local", "--", "user.name", "N"}, ""},
		{"set local with dir uses -C", func() ([]string, error) {
			return ConfigSetArgs(ConfigSetOptions{Key: "a.b", Value: "-v", Dir: "/r"})
		}, []string{"git", "-C", "/r", "config", "--local", "--", "a.b", "-v"}, ""},
		{"set global ignores dir", func() ([]string, error) {
			return ConfigSetArgs(ConfigSetOptions{Key: "a.b", Value: "", Scope: ScopeGlobal, Dir: "/r"})
		}, []string{"git", "config", "--global", "--", "a.b", ""}, ""},
		{"set system", func() ([]string, error) {
			return ConfigSetArgs(ConfigSetOptions{Key: "a.b", Value: "v", Scope: ScopeSystem})
		}, []string{"git", "config", "--system", "--", "a.b", "v"}, ""},
		{"set unknown scope", func() ([]string, error) {
			return ConfigSetArgs(ConfigSetOptions{Key: "a.b", Scope: "worktree"})
		}, nil, "Scope"},
		{"set empty key", func() ([]string, error) { return ConfigSetArgs(ConfigSetOptions{}) }, nil, "Key"},
		{"set key without section", func() ([]string, error) { return ConfigSetArgs(ConfigSetOptions{Key: "name"}) }, nil, "Key"},
		{"set key with dash", func() ([]string, error) { return ConfigSetArgs(ConfigSetOptions{Key: "-a.b"}) }, nil, "Key"},
		{"set key with newline", func() ([]string, error) { return ConfigSetArgs(ConfigSetOptions{Key: "a.b\nc"}) }, nil, "Key"},
		{"set nul value", func() ([]string, error) {
			return ConfigSetArgs(ConfigSetOptions{Key: "a.b", Value: "\x00"})
		}, nil, "Value"},
		{"set nul dir", func() ([]string, error) {
			return ConfigSetArgs(ConfigSetOptions{Key: "a.b", Dir: "\x00"})
		}, nil, "Dir"},
		{"get local with dir", func() ([]string, error) {
			return ConfigGetArgs(ConfigGetOptions{Key: "user.email", Dir: "r"})
		}, []string{"git", "-C", "r", "config", "--local", "--get", "--", "user.email"}, ""},
		{"get global", func() ([]string, error) {
			return ConfigGetArgs(ConfigGetOptions{Key: "user.email", Scope: ScopeGlobal})
		}, []string{"git", "config", "--global", "--get", "--", "user.email"}, ""},
		{"get empty key", func() ([]string, error) { return ConfigGetArgs(ConfigGetOptions{}) }, nil, "Key"},
		{"get bad scope", func() ([]string, error) { return ConfigGetArgs(ConfigGetOptions{Key: "a.b", Scope: "x"}) }, nil, "Scope"},
	})
}

func TestConfigureUserArgs(t *testing.T) {
	got, err := ConfigureUserArgs(ConfigureUserOptions{Name: "Ada", Email: "ada@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"git", "config", "--global", "--", "user.name", "Ada"},
		{"git", "config", "--global", "--", "user.email", "ada@example.test"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default global scope (-want +got):\n%s", diff)
	}
	got, err = ConfigureUserArgs(ConfigureUserOptions{Name: "Ada", Email: "e", Scope: ScopeLocal, Dir: "/r"})
	if err != nil {
		t.Fatal(err)
	}
	want = [][]string{
		{"git", "-C", "/r", "config", "--local", "--", "user.name", "Ada"},
		{"git", "-C", "/r", "config", "--local", "--", "user.email", "e"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("local scope (-want +got):\n%s", diff)
	}
	for name, tc := range map[string]struct {
		opts  ConfigureUserOptions
		field string
	}{
		"empty name":       {ConfigureUserOptions{Email: "e"}, "Name"},
		"empty email":      {ConfigureUserOptions{Name: "n"}, "Email"},
		"newline in name":  {ConfigureUserOptions{Name: "a\nb", Email: "e"}, "Name"},
		"newline in email": {ConfigureUserOptions{Name: "n", Email: "e\r"}, "Email"},
		"bad scope":        {ConfigureUserOptions{Name: "n", Email: "e", Scope: "x"}, "Scope"},
		"nul byte in dir":  {ConfigureUserOptions{Name: "n", Email: "e", Scope: ScopeLocal, Dir: "\x00"}, "Dir"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ConfigureUserArgs(tc.opts)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Errorf("err = %v, want *ValidationError for %s", err, tc.field)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	_, err := ResetArgs(ResetOptions{Mode: "bogus"})
	want := "gitops: reset: invalid Mode: must be one of soft, mixed, hard, merge, keep"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}
