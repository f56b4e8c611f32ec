// Command compose-check loads a compose file with Docker Compose's own loader
// (github.com/compose-spec/compose-go/v2, the library `docker compose` is built on): its JSON
// schema, `${VAR:-default}` interpolation from this process's environment, YAML anchors,
// profiles, and the references between services. No Docker engine runs where the tests do;
// this is as far as `docker compose config` would go.
//
// Usage: compose-check FILE [PROFILE...]
//
// Prints, as JSON, the services the profiles enable (a service without profiles is always
// enabled) with their profiles and resolved environment; on a file the loader refuses, prints
// its error to stderr and exits 1. Built and run by crates/jaeger-harness (compose_loader).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

type service struct {
	Profiles    []string          `json:"profiles"`
	Environment map[string]string `json:"environment"`
	DependsOn   []string          `json:"depends_on"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check FILE [PROFILE...]")
		os.Exit(2)
	}
	options, err := cli.NewProjectOptions(
		[]string{os.Args[1]},
		cli.WithOsEnv,
		cli.WithProfiles(os.Args[2:]),
		cli.WithName("compose-check"),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := map[string]service{}
	for name, s := range project.Services {
		env := map[string]string{}
		for key, value := range s.Environment {
			if value != nil {
				env[key] = *value
			}
		}
		deps := []string{}
		for dep := range s.DependsOn {
			deps = append(deps, dep)
		}
		profiles := s.Profiles
		if profiles == nil {
			profiles = []string{}
		}
		out[name] = service{Profiles: profiles, Environment: env, DependsOn: deps}
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	if err := encoder.Encode(map[string]any{"services": out}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
