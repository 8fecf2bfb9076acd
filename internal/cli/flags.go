package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// fileFlag adds the required -f, the topology file.
func fileFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().VarP((*onceString)(file), "file", "f", "topology file (- for standard input)")
	_ = cmd.MarkFlagRequired("file")
}

// onceString is a string flag that refuses a second value instead of
// letting the last one silently win.
type onceString string

func (s *onceString) String() string { return string(*s) }
func (s *onceString) Type() string   { return "string" }
func (s *onceString) Set(v string) error {
	if *s != "" {
		return fmt.Errorf("given twice (%q, then %q): one topology file per command", string(*s), v)
	}
	*s = onceString(v)
	return nil
}

// nodeFlag adds --node, defaulting to the host name (which the help
// shows as the default).
func nodeFlag(cmd *cobra.Command, node *string) {
	host, _ := os.Hostname()
	cmd.Flags().StringVar(node, "node", host, "node of the file to work on")
}

// outputFlag adds -o (text, json or yaml) to cmd, whose RunE must be set:
// the value is checked before RunE runs, after the global flags and the
// required ones. RunE knows text and json only: for yaml it runs as json
// and its output is converted (keys in the same order, block style).
func outputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "text", "text, json or yaml")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		switch *output {
		case "text", "json":
			return run(cmd, args)
		case "yaml":
		default:
			return fmt.Errorf("-o %q: want text, json or yaml", *output)
		}
		*output = "json"
		out := cmd.OutOrStdout()
		var buf bytes.Buffer
		cmd.SetOut(&buf)
		err := run(cmd, args)
		cmd.SetOut(out)
		if buf.Len() == 0 {
			return err
		}
		return errors.Join(err, jsonToYAML(out, buf.Bytes()))
	}
}

// jsonToYAML writes the JSON values of data as YAML documents.
func jsonToYAML(w io.Writer, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("-o yaml: %w", err)
		}
		// JSON is YAML: parse it as such, which keeps the keys' order,
		// then drop the flow style and quotes it was written in.
		var n yaml.Node
		if err := yaml.Unmarshal(raw, &n); err != nil {
			return fmt.Errorf("-o yaml: %w", err)
		}
		blockStyle(&n)
		if err := enc.Encode(&n); err != nil {
			return fmt.Errorf("-o yaml: %w", err)
		}
	}
	return enc.Close()
}

func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// lockFlag adds --lock-timeout to a command that changes a node.
func lockFlag(cmd *cobra.Command) {
	cmd.Flags().Duration("lock-timeout", 30*time.Second,
		"how long to wait while another netreconcile (apply, destroy, watch) holds the node (0: fail at once)")
}
