package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/policy"
	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// validateCmd checks a file offline: it reads no state and no kernel.
func validateCmd(g *globals) *cobra.Command {
	var files []string
	var output string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a topology file offline (schema, semantics, map capacity of every node); no kernel access",
		Long: `Validate checks a topology file offline, reading no kernel and no state: its
structure, its semantics (addresses, references, uniqueness) and whether every
node's datapath maps can hold its entries. Every error is reported at once, with
file:line:column and the field path; exit 1.

A valid file may still say something its author did not mean. Validate warns
(on standard error, exit 0) about selectors that match nothing: a service that
selects no pod (it refuses every connection), a policy that selects no pod,
and a policy peer whose namespaceSelector or podSelector matches nothing (it
allows nobody).

-o json (or yaml) prints {format_version, file, valid, nodes, pods, services,
policies, errors: [{file, line, column, path, message}], warnings}, also for an
invalid file (exit 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := validate(g, files)
			if output == "text" {
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d nodes, %d pods, %d services, %d policies)\n",
					v.File, v.Nodes, v.Pods, v.Services, v.Policies)
				for _, w := range v.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
				}
				return nil
			}
			if werr := writeJSON(cmd.OutOrStdout(), v); werr != nil {
				return werr
			}
			if err != nil {
				return exitError{1} // the errors are in the document
			}
			return nil
		},
	}
	outputFlag(cmd, &output)
	fileFlag(cmd, &files)
	return cmd
}

// validation is validate's answer as data (-o json).
type validation struct {
	FormatVersion string            `json:"format_version"`
	File          string            `json:"file"`
	Valid         bool              `json:"valid"`
	Nodes         int               `json:"nodes"`
	Pods          int               `json:"pods"`
	Services      int               `json:"services"`
	Policies      int               `json:"policies"`
	Errors        []validationError `json:"errors,omitempty"`
	Warnings      []string          `json:"warnings,omitempty"`
}

type validationError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// validate checks the files, and also returns the error for the text
// output.
func validate(g *globals, files []string) (*validation, error) {
	v := &validation{FormatVersion: "1.0", File: strings.Join(files, ", ")}
	r, pos, err := g.loadOffline(files)
	if err == nil {
		err = reconcile.CheckCapacity(r, pos)
	}
	if err != nil {
		var errs *spec.Errors
		if errors.As(err, &errs) {
			for _, e := range errs.List {
				v.Errors = append(v.Errors, validationError{e.File, e.Line, e.Column, e.Path, e.Msg})
			}
		} else {
			v.Errors = []validationError{{File: v.File, Message: err.Error()}}
		}
		return v, err
	}
	v.Valid = true
	v.Nodes, v.Pods, v.Services, v.Policies = len(r.Nodes), len(r.Pods), len(r.Services), len(r.Policies)
	// Valid, but most likely not what was meant: said, exit 0.
	for _, w := range policy.Lint(r) {
		v.Warnings = append(v.Warnings, w.String())
	}
	return v, nil
}
