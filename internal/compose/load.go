package compose

import (
	"context"
	"fmt"
	"github.com/tend-sh/tend/internal/spec"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// LoadOptions says which compose files to read and how, like the flags of `docker compose`.
// The zero value reads the default compose file of the current directory with no environment.
type LoadOptions struct {
	// Files are merged in order, as with repeated -f. Empty: the first of DefaultFiles
	// found in WorkingDir.
	Files []string
	// ProjectName is -p. Empty: COMPOSE_PROJECT_NAME from Environ or .env, else the
	// file's name:, else WorkingDir's base name normalised as compose does.
	ProjectName string
	// WorkingDir is the project directory: relative paths (binds, env_file) and .env
	// are found there. Empty: the directory of the first file.
	WorkingDir string
	// Profiles are the active profiles. Empty: COMPOSE_PROFILES from Environ or .env.
	Profiles []string
	// Environ is os.Environ()-style KEY=value: the source of interpolation and of
	// `environment` entries without a value. It wins over .env. Nil means none, so a
	// load depends on the caller's environment only when the caller says so.
	Environ []string
	// Services, when set, are the services to load (`tend up web db`): these and
	// what they depend on, enabled even if a profile would leave them out, as
	// compose does. Checks across services apply to that set only.
	Services []string
}

// DefaultFiles are the compose files looked for when LoadOptions.Files is empty, in order.
var DefaultFiles = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}

// composeFile is one file to load: its path and the name errors use for it.
type composeFile struct {
	path    string // as handed to compose-go
	display string // as the user gave it, or the base name of a discovered file
}

// Load reads the compose files of o and returns the stack they describe, with a Warning
// for each key tend does not honour. It returns either a whole valid Project or an error;
// errors about the files are *Error values naming file, service and key.
func Load(ctx context.Context, o LoadOptions) (*spec.Project, []spec.Warning, error) {
	files, err := composeFiles(o)
	if err != nil {
		return nil, nil, err
	}
	if o.ProjectName != "" {
		if err := checkProjectName(o.ProjectName); err != nil {
			return nil, nil, err
		}
	}
	cp, err := loadCompose(ctx, o, files)
	if err != nil {
		return nil, nil, err
	}
	if cp, err = selectServices(cp, o.Services); err != nil {
		return nil, nil, inFile(err, files[0].display)
	}
	// Results of merged files are attributed to the first: compose-go does not say
	// which file a merged key came from.
	main := files[0].display
	p, warnings, err := convertProject(cp)
	if err == nil {
		err = spec.Validate(p)
	}
	if err != nil {
		return nil, nil, inFile(err, main)
	}
	warnings = append(warnings, sharedPortWarnings(p)...)
	for i := range warnings {
		warnings[i].File = main
	}
	return p, warnings, nil
}

// sharedPortWarnings tells of fixed UDP host ports on replicated services:
// tend's proxy owns TCP ports and balances them over the replicas, but UDP and
// SCTP go through the engine, where only replica 1 can bind such a port. A range
// gives each replica a port of its own, while it has enough.
func sharedPortWarnings(p *spec.Project) []spec.Warning {
	var out []spec.Warning
	for _, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostPort == 0 || s.Replicas < 2 || port.Protocol == "tcp" {
				continue
			}
			msg := fmt.Sprintf("%s host port %d is published by replica 1 only (%d replicas cannot share it; tend's proxy balances tcp only)", port.Protocol, port.HostPort, s.Replicas)
			if port.HostPortEnd != 0 {
				n := int(port.HostPortEnd) - int(port.HostPort) + 1
				if n >= s.Replicas {
					continue
				}
				msg = fmt.Sprintf("%s host ports %d-%d are a port each for %d of the %d replicas: the engine cannot start the others (tend's proxy balances tcp only)", port.Protocol, port.HostPort, port.HostPortEnd, n, s.Replicas)
			}
			out = append(out, spec.Warning{Service: s.Name, Key: "ports", Message: msg})
		}
	}
	return out
}

// selectServices keeps the named services and their dependencies; none named keeps all.
func selectServices(cp *types.Project, names []string) (*types.Project, error) {
	if len(names) == 0 {
		return cp, nil
	}
	for _, n := range names {
		_, on := cp.Services[n]
		_, off := cp.DisabledServices[n]
		if !on && !off {
			return nil, &spec.Error{Key: "services", Message: fmt.Sprintf("no service %q in the project (it has %s)", n, strings.Join(slices.Sorted(maps.Keys(cp.Services)), ", "))}
		}
	}
	cp, err := cp.WithServicesEnabled(names...)
	if err == nil {
		cp, err = cp.WithSelectedServices(names, types.IncludeDependencies)
	}
	if err != nil {
		return nil, &spec.Error{Key: "services", Message: oneLine(err.Error()), Err: err}
	}
	return cp, nil
}

// composeFiles resolves o.Files, or finds the default file in the working directory.
func composeFiles(o LoadOptions) ([]composeFile, error) {
	if len(o.Files) > 0 {
		files := make([]composeFile, len(o.Files))
		for i, f := range o.Files {
			// compose-go's wording repeats the path three times; say it once
			if _, err := os.Stat(f); err != nil {
				return nil, &spec.Error{File: f, Message: "cannot read: " + reason(err), Err: err}
			}
			files[i] = composeFile{path: f, display: f}
		}
		return files, nil
	}
	dir := o.WorkingDir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("spec: find compose file: %w", err)
		}
		dir = wd
	}
	for _, name := range DefaultFiles {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			return []composeFile{{path: path, display: name}}, nil
		}
	}
	return nil, &spec.Error{Message: fmt.Sprintf("no compose file in %s (looked for %s)", dir, strings.Join(DefaultFiles, ", "))}
}

// loadCompose runs compose-go: parsing, merging, interpolation, .env, profiles, extends.
func loadCompose(ctx context.Context, o LoadOptions, files []composeFile) (*types.Project, error) {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.path
	}
	opts, err := composeOptions(o, paths)
	if err != nil {
		return nil, composeError(err, o, files)
	}
	cp, err := loadProject(ctx, opts)
	if err == nil {
		return cp, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("spec: load: %w", ctx.Err())
	}
	if derr := diagnose(ctx, o, paths); derr != nil {
		return nil, inFile(derr, files[0].display)
	}
	for _, derr := range []error{diagnoseMissingFile(err, o, paths), diagnoseMount(err, paths)} {
		if e, ok := derr.(*spec.Error); ok {
			for _, f := range files { // found in the file of that path: say it as the user did
				if e.File == f.path {
					e.File = f.display
				}
			}
			return nil, e
		}
	}
	if len(files) > 1 && strings.HasPrefix(err.Error(), "yaml:") {
		err = reparse(ctx, o, paths, err)
	}
	return nil, composeError(err, o, files)
}

// loadProject is compose-go's LoadProject, with a panic inside it turned into an
// error: compose-go's normalization assumes shapes its schema check has not yet
// confirmed (a null service, `networks:` as a string), and tend never crashes on input.
func loadProject(ctx context.Context, opts *cli.ProjectOptions) (cp *types.Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			cp, err = nil, fmt.Errorf("compose-go failed on this file: %v", r)
		}
	}()
	return opts.LoadProject(ctx)
}

// composeOptions are the compose-go options of a load. The order matters: the working
// directory locates .env, and .env feeds COMPOSE_PROFILES.
func composeOptions(o LoadOptions, paths []string, extra ...cli.ProjectOptionsFn) (*cli.ProjectOptions, error) {
	fns := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(o.WorkingDir),
		cli.WithEnv(o.Environ),
		cli.WithEnvFiles(),
		cli.WithDotEnv, // adds only what Environ does not set, so Environ wins
		cli.WithDefaultProfiles(o.Profiles...),
		cli.WithName(o.ProjectName),
		// compose-go's consistency errors do not all name the service; Validate
		// checks the same things (and more) in tend's words.
		cli.WithConsistency(false),
	}
	return cli.NewProjectOptions(paths, append(fns, extra...)...)
}

// reparse finds which of several files holds a YAML syntax error: compose-go reads
// every file once for `name:` before loading and reports that error without a file
// name. With an explicit project name that pass is skipped and the loader's own
// error names the file.
func reparse(ctx context.Context, o LoadOptions, paths []string, err error) error {
	opts, oerr := composeOptions(o, paths, cli.WithName("tend-reparse"))
	if oerr != nil {
		return err
	}
	if _, rerr := loadProject(ctx, opts); rerr != nil {
		return rerr
	}
	return err
}

// composeError turns an error of compose-go into an *Error naming the file, and the
// service and key when compose-go's message says them.
func composeError(err error, o LoadOptions, files []composeFile) error {
	e := &spec.Error{File: files[0].display, Message: oneLine(err.Error()), Err: err}
	for _, f := range files {
		abs, _ := filepath.Abs(f.path)
		for _, prefix := range []string{"validating ", "failed to parse "} {
			if rest, ok := strings.CutPrefix(e.Message, prefix+abs+": "); ok {
				e.File, e.Message = f.display, rest
			}
		}
	}
	e.Message = shortenPaths(e.Message, o, files)
	if rest, ok := strings.CutPrefix(e.Message, "yaml: "); ok {
		e.Message = "invalid YAML: " + rest
	}
	reword(e)
	splitServiceKey(e)
	splitExtends(e)
	e.Message = schemaGrammar.Replace(e.Message)
	if listOrMapping[e.Key] && (e.Message == "must be a list" || e.Message == "must be a mapping") {
		e.Message = "must be a list or a mapping" // compose-go names one of the two forms it takes
	}
	return e
}

// shortenPaths replaces the absolute paths compose-go prints with the names the user
// knows: compose files as given, other files relative to the project directory.
func shortenPaths(msg string, o LoadOptions, files []composeFile) string {
	var pairs [][2]string
	for _, f := range files {
		if abs, err := filepath.Abs(f.path); err == nil {
			pairs = append(pairs, [2]string{abs, f.display})
		}
	}
	dir := o.WorkingDir
	if dir == "" {
		dir = filepath.Dir(files[0].path)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		pairs = append(pairs, [2]string{abs + string(filepath.Separator), ""})
	}
	// One pass, longest first: a file's path is replaced whole, never cut by its
	// directory's.
	slices.SortStableFunc(pairs, func(a, b [2]string) int { return len(b[0]) - len(a[0]) })
	var args []string
	for _, p := range pairs {
		args = append(args, p[0], p[1])
	}
	return strings.NewReplacer(args...).Replace(msg)
}

// splitServiceKey moves a leading `services.<name>.<key>` of compose-go's schema and
// interpolation messages into Service and Key.
func splitServiceKey(e *spec.Error) {
	msg := strings.TrimPrefix(e.Message, "error while interpolating ")
	rest, ok := strings.CutPrefix(msg, "services.")
	if !ok {
		return
	}
	path, detail, ok := strings.Cut(rest, " ")
	if !ok {
		return
	}
	service, key, ok := strings.Cut(strings.TrimSuffix(path, ":"), ".")
	if !ok {
		return
	}
	if detail == "false schema" { // jsonschema's words for "additional property not allowed"
		detail = "unknown key"
	}
	e.Service, e.Key, e.Message = service, key, detail
}

// checkProjectName applies compose's rule for an explicit project name.
func checkProjectName(name string) error {
	if spec.ValidProjectName(name) {
		return nil
	}
	return &spec.Error{Key: "project name", Message: fmt.Sprintf("%q must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit", name)}
}
