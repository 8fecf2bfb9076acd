package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// fileHelp is -f's help: what a topology set can be made of.
const fileHelp = "topology file, directory (its *.yaml and *.yml, in name order), - (standard input) or etcd://HOST:PORT/PREFIX (every key under PREFIX; etcds:// over TLS, see --etcd-ca); repeat to merge several"

// fileFlag adds the required -f, the topology's files.
func fileFlag(cmd *cobra.Command, files *[]string) {
	cmd.Flags().StringArrayVarP(files, "file", "f", nil, fileHelp)
	_ = cmd.MarkFlagRequired("file")
}

// byteSize is a flag of a number of bytes, with an optional binary
// suffix: 64Mi, 64MiB, 64M and 67108864 are the same.
type byteSize int64

func (b *byteSize) String() string {
	switch n := int64(*b); {
	case n > 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "Gi"
	case n > 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "Mi"
	case n > 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "Ki"
	default:
		return strconv.FormatInt(n, 10)
	}
}

func (b *byteSize) Type() string { return "bytes" }

func (b *byteSize) Set(v string) error {
	num := strings.TrimRight(v, "KMGiBkb")
	shift := map[string]uint{"": 0, "K": 10, "KI": 10, "KIB": 10, "KB": 10, "M": 20, "MI": 20, "MIB": 20, "MB": 20,
		"G": 30, "GI": 30, "GIB": 30, "GB": 30}
	sh, ok := shift[strings.ToUpper(v[len(num):])]
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n <= 0 || n > (1<<40)>>sh {
		return fmt.Errorf("%q: want a positive size in bytes, with an optional suffix Ki, Mi or Gi (64Mi)", v)
	}
	*b = byteSize(n << sh)
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
