package gitops

import "strings"

// ConfigScope selects the configuration file git config reads or writes.
type ConfigScope string

// Configuration scopes.
const (
	ScopeLocal  ConfigScope = "local"  // the repository's .git/config
	ScopeGlobal ConfigScope = "global" // the user's ~/.gitconfig
	ScopeSystem ConfigScope = "system" // the system-wide gitconfig
)

func (s ConfigScope) orDefault(def ConfigScope) ConfigScope {
	if s == "" {
		return def
	}
	return s
}

func checkScope(op string, s ConfigScope) error {
	switch s {
	case ScopeLocal, ScopeGlobal, ScopeSystem:
		return nil
	}
	return invalid(op, "Scope", "must be local, global or system")
}

func checkKey(op, key string) error {
	if err := checkName(op, "Key", key, true); err != nil {
		return err
	}
	if strings.ContainsAny(key, "\n\r") || !strings.Contains(key, ".") {
		return invalid(op, "Key", `must have the form "section.name"`)
	}
	return nil
}

// configPrefix returns `git [-C dir] config --<scope>`; -C is only used for
// the local scope, where it selects the repository.
func configPrefix(op string, scope ConfigScope, dir string) ([]string, error) {
	if err := checkScope(op, scope); err != nil {
		return nil, err
	}
	if err := checkArg(op, "Dir", dir, false); err != nil {
		return nil, err
	}
	argv := []string{"git"}
	if scope == ScopeLocal && dir != "" {
		argv = append(argv, "-C", dir)
	}
	return append(argv, "config", "--"+string(scope)), nil
}

// ConfigSetOptions configures ConfigSetArgs.
type ConfigSetOptions struct {
	Key   string      // "section.name", for example "user.name"; required
	Value string      // new value; may be empty
	Scope ConfigScope // empty means ScopeLocal
	Dir   string      // repository for the local scope (git -C); ignored for other scopes
}

// ConfigSetArgs builds `git [-C <dir>] config --<scope> -- <key> <value>`.
func ConfigSetArgs(o ConfigSetOptions) ([]string, error) {
	const op = "config set"
	if err := checkKey(op, o.Key); err != nil {
		return nil, err
	}
	if err := checkArg(op, "Value", o.Value, false); err != nil {
		return nil, err
	}
	argv, err := configPrefix(op, o.Scope.orDefault(ScopeLocal), o.Dir)
	if err != nil {
		return nil, err
	}
	return append(argv, "--", o.Key, o.Value), nil
}

// ConfigGetOptions configures ConfigGetArgs.
type ConfigGetOptions struct {
	Key   string      // "section.name"; required
	Scope ConfigScope // empty means ScopeLocal
	Dir   string      // repository for the local scope (git -C); ignored for other scopes
}

// ConfigGetArgs builds `git [-C <dir>] config --<scope> --get -- <key>`. git
// prints the value and exits 1 when the key is not set.
func ConfigGetArgs(o ConfigGetOptions) ([]string, error) {
	const op = "config get"
	if err := checkKey(op, o.Key); err != nil {
		return nil, err
	}
	argv, err := configPrefix(op, o.Scope.orDefault(ScopeLocal), o.Dir)
	if err != nil {
		return nil, err
	}
	return append(argv, "--get", "--", o.Key), nil
}

// ConfigureUserOptions configures ConfigureUserArgs.
type ConfigureUserOptions struct {
	Name  string      // user.name; required
	Email string      // user.email; required
	Scope ConfigScope // empty means ScopeGlobal
	Dir   string      // repository for the local scope
}

// ConfigureUserArgs returns the two commands that set user.name and
// user.email (see ConfigSetArgs); run them in order.
func ConfigureUserArgs(o ConfigureUserOptions) ([][]string, error) {
	const op = "configure user"
	if err := checkIdentity(op, "Name", o.Name, true); err != nil {
		return nil, err
	}
	if err := checkIdentity(op, "Email", o.Email, true); err != nil {
		return nil, err
	}
	scope := o.Scope.orDefault(ScopeGlobal)
	name, err := ConfigSetArgs(ConfigSetOptions{Key: "user.name", Value: o.Name, Scope: scope, Dir: o.Dir})
	if err != nil {
		return nil, err
	}
	email, err := ConfigSetArgs(ConfigSetOptions{Key: "user.email", Value: o.Email, Scope: scope, Dir: o.Dir})
	if err != nil {
		return nil, err
	}
	return [][]string{name, email}, nil
}
