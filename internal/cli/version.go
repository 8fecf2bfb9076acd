package cli

import (
	"encoding/json"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/netreconcile/netreconcile/reconcile"
	"github.com/netreconcile/netreconcile/spec"
)

// buildVersion is what version prints: the version stamped at link time,
// else the module version and commit the Go toolchain recorded (go
// install pkg@v1.2.3 records the tag; a build in a checkout the commit).
type buildVersion struct {
	FormatVersion string `json:"format_version"`
	Version       string `json:"version"`
	Commit        string `json:"commit,omitempty"`
	CommitTime    string `json:"commit_time,omitempty"`
	Modified      bool   `json:"modified,omitempty"`
	GoVersion     string `json:"go_version,omitempty"`
	Topology      string `json:"topology"`
	PlanFormat    string `json:"plan_format"`
}

func readBuildVersion(stamped string) buildVersion {
	v := buildVersion{FormatVersion: "1.0", Version: stamped, Topology: spec.APIVersion, PlanFormat: reconcile.PlanFormatVersion}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.GoVersion = info.GoVersion
	if stamped == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v buildVersion) String() string {
	s := "netreconcile " + v.Version
	if v.Commit != "" {
		c := v.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " (commit " + c
		if v.Modified {
			s += ", modified"
		}
		if v.CommitTime != "" {
			s += ", " + v.CommitTime
		}
		s += ")"
	}
	return s + fmt.Sprintf(" (topology %s, plan format %s)", v.Topology, v.PlanFormat)
}

// versionCmd prints the binary's version and the formats it speaks.
func versionCmd(version string) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o text|json]",
		Short: "Print the version, the commit it was built from, and the formats it speaks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := readBuildVersion(version)
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), v)
			return err
		},
	}
	outputFlag(cmd, &output)
	return cmd
}
