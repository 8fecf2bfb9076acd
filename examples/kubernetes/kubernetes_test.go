// Package kubernetes_test checks the Kubernetes example: every object
// decodes strictly with the Kubernetes API types, the DaemonSet has what
// netreconcile needs on a node, and its ConfigMaps, laid out as the
// kubelet lays out a projected volume, validate as one topology.
package kubernetes_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/netreconcile/netreconcile/spec"
)

// objects is the example decoded, by kind.
type objects struct {
	daemonSets []appsv1.DaemonSet
	configMaps map[string]corev1.ConfigMap
	accounts   []corev1.ServiceAccount
	namespaces []corev1.Namespace
}

// decode reads every document of the manifest strictly (unknown or
// duplicate fields are errors) into its Kubernetes type.
func decode(t *testing.T, path string) objects {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs := objects{configMaps: map[string]corev1.ConfigMap{}}
	r := k8syaml.NewYAMLReader(bufio.NewReader(f))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		strict := func(into any) {
			t.Helper()
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Fatalf("%s: %v", tm.Kind, err)
			}
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 DaemonSet":
			var ds appsv1.DaemonSet
			strict(&ds)
			objs.daemonSets = append(objs.daemonSets, ds)
		case "v1 ConfigMap":
			var cm corev1.ConfigMap
			strict(&cm)
			objs.configMaps[cm.Name] = cm
		case "v1 ServiceAccount":
			var sa corev1.ServiceAccount
			strict(&sa)
			objs.accounts = append(objs.accounts, sa)
		case "v1 Namespace":
			var ns corev1.Namespace
			strict(&ns)
			objs.namespaces = append(objs.namespaces, ns)
		default:
			t.Fatalf("unexpected object %s %s", tm.APIVersion, tm.Kind)
		}
	}
	return objs
}

func TestDaemonSet(t *testing.T) {
	objs := decode(t, "netreconcile.yaml")
	if len(objs.daemonSets) != 1 || len(objs.accounts) != 1 || len(objs.namespaces) != 1 {
		t.Fatalf("%d DaemonSets, %d ServiceAccounts, %d Namespaces", len(objs.daemonSets), len(objs.accounts), len(objs.namespaces))
	}
	ds := objs.daemonSets[0]
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || !pod.HostPID || pod.ServiceAccountName != objs.accounts[0].Name {
		t.Errorf("hostNetwork %v, hostPID %v, serviceAccount %q", pod.HostNetwork, pod.HostPID, pod.ServiceAccountName)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if got := strings.Join(c.Args, " "); !strings.HasPrefix(got, "watch -f /etc/netreconcile --node=$(NODE_NAME) --metrics-addr=$(HOST_IP):9403") {
		t.Errorf("args: %s", got)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["NODE_NAME"] != "spec.nodeName" || env["HOST_IP"] != "status.hostIP" {
		t.Errorf("downward API: %v", env)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || !*sc.Privileged || sc.Capabilities == nil {
		t.Fatalf("security context %+v", sc)
	}
	for _, cp := range []corev1.Capability{"NET_ADMIN", "SYS_ADMIN", "BPF", "PERFMON"} {
		if !slices.Contains(sc.Capabilities.Add, cp) {
			t.Errorf("capability %s not added", cp)
		}
	}
	checkProbes(t, c)
	checkMounts(t, c, pod.Volumes)
}

func checkProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9403 {
		t.Errorf("ports %+v", c.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name || p.HTTPGet.Port.StrVal != "metrics" {
			t.Errorf("probe %s: %+v", name, p)
		}
	}
}

func checkMounts(t *testing.T, c corev1.Container, volumes []corev1.Volume) {
	t.Helper()
	host := map[string]string{}
	for _, v := range volumes {
		if v.HostPath != nil {
			host[v.Name] = v.HostPath.Path
		}
	}
	bidi := corev1.MountPropagationBidirectional
	want := map[string]struct {
		host  string
		prop  *corev1.MountPropagationMode
		write bool
	}{
		"/sys/fs/bpf":       {"/sys/fs/bpf", &bidi, true},
		"/var/run/netns":    {"/run/netns", &bidi, true},
		"/run/netreconcile": {"/run/netreconcile", nil, true},
		"/etc/netreconcile": {"", nil, false},
	}
	for _, m := range c.VolumeMounts {
		w, ok := want[m.MountPath]
		if !ok {
			t.Errorf("unexpected mount %s", m.MountPath)
			continue
		}
		delete(want, m.MountPath)
		if host[m.Name] != w.host || m.ReadOnly == w.write ||
			(w.prop == nil) != (m.MountPropagation == nil) || (w.prop != nil && *m.MountPropagation != *w.prop) {
			t.Errorf("mount %s: host %q, %+v", m.MountPath, host[m.Name], m)
		}
	}
	for p := range want {
		t.Errorf("no mount at %s", p)
	}
}

// TestConfigMapsAreOneTopology lays the projected volume out as the
// kubelet does (the files in a hidden timestamped directory, ..data a
// link to it, each file a link through ..data) and loads the directory.
func TestConfigMapsAreOneTopology(t *testing.T) {
	objs := decode(t, "netreconcile.yaml")
	var proj *corev1.ProjectedVolumeSource
	for _, v := range objs.daemonSets[0].Spec.Template.Spec.Volumes {
		if v.Name == "topology" {
			proj = v.Projected
		}
	}
	if proj == nil || len(proj.Sources) < 2 {
		t.Fatalf("topology volume: %+v", proj)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "..2026_01_01_00_00_00.123")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, src := range proj.Sources {
		cm, ok := objs.configMaps[src.ConfigMap.Name]
		if !ok {
			t.Fatalf("ConfigMap %q is not in the example", src.ConfigMap.Name)
		}
		for key, text := range cm.Data {
			names = append(names, key)
			if err := os.WriteFile(filepath.Join(data, key), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink(filepath.Base(data), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	srcs, err := spec.ReadFiles(spec.DefaultMaxFileSize, dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	if len(srcs) != len(names) || !bytes.Equal(srcs[0].Data, []byte(objs.configMaps["netreconcile-cluster"].Data[names[0]])) {
		t.Fatalf("read %d files, want %v", len(srcs), names)
	}
	r, _, err := spec.Load(srcs)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 2 || len(r.Pods) != 3 || len(r.Services) != 1 || len(r.Policies) != 1 {
		t.Errorf("%d nodes, %d pods, %d services, %d policies", len(r.Nodes), len(r.Pods), len(r.Services), len(r.Policies))
	}
}
