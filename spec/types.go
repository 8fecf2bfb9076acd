package spec

// APIVersion and Kind identify a v1 topology file.
const (
	APIVersion = "netreconcile/v1"
	Kind       = "Topology"
)

// Attachment modes for pods.
const (
	ModeVeth    = "veth"
	ModeBridge  = "bridge"
	ModeMacvlan = "macvlan"
	ModeIPvlan  = "ipvlan"
)

// Node routing modes.
const (
	RoutingAuto   = "auto"
	RoutingDirect = "direct"
	RoutingVXLAN  = "vxlan"
)

// Topology is the whole v1 file as the user wrote it. Field names follow
// DESIGN.md; yaml and json tags are the same so that the JSON Schema in
// schema/ describes both.
type Topology struct {
	APIVersion string      `yaml:"apiVersion" json:"apiVersion"`
	Kind       string      `yaml:"kind" json:"kind"`
	Cluster    Cluster     `yaml:"cluster" json:"cluster"`
	Namespaces []Namespace `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	Nodes      []Node      `yaml:"nodes" json:"nodes"`
	Pods       []Pod       `yaml:"pods,omitempty" json:"pods,omitempty"`
	Services   []Service   `yaml:"services,omitempty" json:"services,omitempty"`
	Policies   []Policy    `yaml:"policies,omitempty" json:"policies,omitempty"`
}

// Cluster holds cluster-wide settings.
type Cluster struct {
	PodCIDR     string   `yaml:"podCIDR" json:"podCIDR"`
	ServiceCIDR string   `yaml:"serviceCIDR,omitempty" json:"serviceCIDR,omitempty"`
	Mode        string   `yaml:"mode,omitempty" json:"mode,omitempty"` // default attachment; "" means veth
	Routing     Routing  `yaml:"routing,omitempty" json:"routing,omitempty"`
	MTU         int      `yaml:"mtu,omitempty" json:"mtu,omitempty"` // 0: derive from the uplink
	Datapath    Datapath `yaml:"datapath,omitempty" json:"datapath,omitempty"`
	Egress      Egress   `yaml:"egress,omitempty" json:"egress,omitempty"`
	// NodePortRange is "MIN-MAX", inclusive (default "30000-32767").
	NodePortRange string `yaml:"nodePortRange,omitempty" json:"nodePortRange,omitempty"`
}

// Egress is how pods' traffic to destinations outside the cluster leaves
// the node.
type Egress struct {
	// Masquerade rewrites the source of pods' traffic to destinations
	// outside the cluster to the node's address (default true).
	Masquerade *bool `yaml:"masquerade,omitempty" json:"masquerade,omitempty"`
	// NonMasqueradeCIDRs are destinations reached with the pod's own
	// address (besides pod CIDRs and node addresses, never masqueraded).
	NonMasqueradeCIDRs []string `yaml:"nonMasqueradeCIDRs,omitempty" json:"nonMasqueradeCIDRs,omitempty"`
}

// Datapath holds settings of the eBPF datapath.
type Datapath struct {
	Maps DatapathMaps `yaml:"maps,omitempty" json:"maps,omitempty"`
	// ConntrackPerSource bounds the connection-tracking entries one source
	// address may hold in each table (0: the datapath's default, 32768).
	ConntrackPerSource int `yaml:"conntrackPerSource,omitempty" json:"conntrackPerSource,omitempty"`
}

// DatapathMaps sets the datapath's map sizes (entries); each absent one
// keeps its default (DefaultMapSizes). Changing one replaces the node's
// datapath: its maps start empty, connection tracking included.
type DatapathMaps struct {
	Services         int `yaml:"services,omitempty" json:"services,omitempty"`
	Backends         int `yaml:"backends,omitempty" json:"backends,omitempty"`
	Endpoints        int `yaml:"endpoints,omitempty" json:"endpoints,omitempty"`
	Affinity         int `yaml:"affinity,omitempty" json:"affinity,omitempty"`
	Conntrack        int `yaml:"conntrack,omitempty" json:"conntrack,omitempty"`
	PolicyIdentities int `yaml:"policyIdentities,omitempty" json:"policyIdentities,omitempty"`
	PolicyPods       int `yaml:"policyPods,omitempty" json:"policyPods,omitempty"`
	PolicyRules      int `yaml:"policyRules,omitempty" json:"policyRules,omitempty"`
}

// Routing selects how pod CIDRs of other nodes are reached.
type Routing struct {
	Mode  string `yaml:"mode,omitempty" json:"mode,omitempty"` // auto (default) | direct | vxlan
	VXLAN VXLAN  `yaml:"vxlan,omitempty" json:"vxlan,omitempty"`
}

// VXLAN parameters shared by all nodes.
type VXLAN struct {
	VNI  int `yaml:"vni,omitempty" json:"vni,omitempty"`   // default 1
	Port int `yaml:"port,omitempty" json:"port,omitempty"` // default 4789
}

// Namespace gives labels to a (Kubernetes-style) namespace.
type Namespace struct {
	Name   string            `yaml:"name" json:"name"`
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// Node is one host of the cluster.
type Node struct {
	Name    string `yaml:"name" json:"name"`
	Address string `yaml:"address" json:"address"` // underlay address with prefix, on the uplink
	Uplink  string `yaml:"uplink,omitempty" json:"uplink,omitempty"`
	PodCIDR string `yaml:"podCIDR" json:"podCIDR"`
}

// Pod is one network namespace attached to a node.
type Pod struct {
	Name      string `yaml:"name" json:"name"`
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"` // default "default"
	Node      string `yaml:"node" json:"node"`
	IP        string `yaml:"ip,omitempty" json:"ip,omitempty"`
	Mode      string `yaml:"mode,omitempty" json:"mode,omitempty"`
	Netns     string `yaml:"netns,omitempty" json:"netns,omitempty"` // name under /var/run/netns or absolute path
	// AdoptNetns lets the pod use a namespace that exists and that
	// netreconcile did not create; without it, plan and apply refuse one.
	AdoptNetns bool              `yaml:"adoptNetns,omitempty" json:"adoptNetns,omitempty"`
	Labels     map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Ports      []ContainerPort   `yaml:"ports,omitempty" json:"ports,omitempty"`
}

// ContainerPort is a port a pod serves, optionally named for policies.
type ContainerPort struct {
	Name     string `yaml:"name,omitempty" json:"name,omitempty"`
	Port     int    `yaml:"port" json:"port"`
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"` // default TCP
}

// Service is a clusterIP load-balanced onto the pods its selector matches.
type Service struct {
	Name            string            `yaml:"name" json:"name"`
	Namespace       string            `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	ClusterIP       string            `yaml:"clusterIP" json:"clusterIP"`
	Selector        map[string]string `yaml:"selector,omitempty" json:"selector,omitempty"`
	Ports           []ServicePort     `yaml:"ports" json:"ports"`
	SessionAffinity string            `yaml:"sessionAffinity,omitempty" json:"sessionAffinity,omitempty"` // None | ClientIP
	// The fields below are Kubernetes core/v1 ServiceSpec's.
	Type                  string                 `yaml:"type,omitempty" json:"type,omitempty"` // ClusterIP (default) | NodePort
	ExternalIPs           []string               `yaml:"externalIPs,omitempty" json:"externalIPs,omitempty"`
	ExternalTrafficPolicy string                 `yaml:"externalTrafficPolicy,omitempty" json:"externalTrafficPolicy,omitempty"` // Cluster (default) | Local
	InternalTrafficPolicy string                 `yaml:"internalTrafficPolicy,omitempty" json:"internalTrafficPolicy,omitempty"` // Cluster (default) | Local
	SessionAffinityConfig *SessionAffinityConfig `yaml:"sessionAffinityConfig,omitempty" json:"sessionAffinityConfig,omitempty"`
}

// SessionAffinityConfig mirrors core/v1 SessionAffinityConfig.
type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `yaml:"clientIP,omitempty" json:"clientIP,omitempty"`
}

// ClientIPConfig mirrors core/v1 ClientIPConfig.
type ClientIPConfig struct {
	// TimeoutSeconds is how long a client keeps its backend while idle
	// (1..86400, default 10800).
	TimeoutSeconds *int `yaml:"timeoutSeconds,omitempty" json:"timeoutSeconds,omitempty"`
}

// ServicePort maps a service port to a target port on the backends.
// TargetPort is a number or the name of a pod port (IntOrString).
type ServicePort struct {
	Name       string      `yaml:"name,omitempty" json:"name,omitempty"`
	Port       int         `yaml:"port" json:"port"`
	TargetPort IntOrString `yaml:"targetPort,omitempty" json:"targetPort,omitzero"` // default: port
	Protocol   string      `yaml:"protocol,omitempty" json:"protocol,omitempty"`    // default TCP
	// NodePort is the port on every node's address (type NodePort only;
	// 0: allocated from cluster.nodePortRange).
	NodePort int `yaml:"nodePort,omitempty" json:"nodePort,omitempty"`
}

// Policy is a Kubernetes NetworkPolicy (networking.k8s.io/v1).
// A NetworkPolicy pasted whole from Kubernetes is taken too: apiVersion
// networking.k8s.io/v1, kind NetworkPolicy, and metadata.name and
// metadata.namespace in place of name and namespace.
type Policy struct {
	Name       string      `yaml:"name,omitempty" json:"name,omitempty"` // or metadata.name
	Namespace  string      `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	APIVersion string      `yaml:"apiVersion,omitempty" json:"apiVersion,omitempty"` // networking.k8s.io/v1
	Kind       string      `yaml:"kind,omitempty" json:"kind,omitempty"`             // NetworkPolicy
	Metadata   *ObjectMeta `yaml:"metadata,omitempty" json:"metadata,omitempty"`
	Spec       PolicySpec  `yaml:"spec" json:"spec"`
}

// ObjectMeta is the part of Kubernetes' object metadata a pasted policy
// may carry; labels and annotations are accepted and ignored.
type ObjectMeta struct {
	Name        string            `yaml:"name,omitempty" json:"name,omitempty"`
	Namespace   string            `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// unknownFieldHint says how to fix a pasted manifest's server fields.
func (*ObjectMeta) unknownFieldHint(string) string {
	return "; netreconcile reads metadata.name, namespace, labels and annotations: delete what the API server added (uid, resourceVersion, generation, creationTimestamp, managedFields)"
}

func (*Policy) unknownFieldHint(name string) string {
	if name == "status" {
		return "; delete status: (the API server's, not part of a policy)"
	}
	return ""
}

// PolicySpec mirrors NetworkPolicySpec.
type PolicySpec struct {
	PodSelector LabelSelector       `yaml:"podSelector" json:"podSelector"`
	PolicyTypes []string            `yaml:"policyTypes,omitempty" json:"policyTypes,omitempty"` // Ingress | Egress
	Ingress     []PolicyIngressRule `yaml:"ingress,omitempty" json:"ingress,omitempty"`
	Egress      []PolicyEgressRule  `yaml:"egress,omitempty" json:"egress,omitempty"`
}

// PolicyIngressRule mirrors NetworkPolicyIngressRule.
type PolicyIngressRule struct {
	From  []PolicyPeer `yaml:"from,omitempty" json:"from,omitempty"`
	Ports []PolicyPort `yaml:"ports,omitempty" json:"ports,omitempty"`
}

// PolicyEgressRule mirrors NetworkPolicyEgressRule.
type PolicyEgressRule struct {
	To    []PolicyPeer `yaml:"to,omitempty" json:"to,omitempty"`
	Ports []PolicyPort `yaml:"ports,omitempty" json:"ports,omitempty"`
}

// PolicyPeer mirrors NetworkPolicyPeer. Pointers distinguish "absent"
// from "empty selector" ({} selects everything).
type PolicyPeer struct {
	PodSelector       *LabelSelector `yaml:"podSelector,omitempty" json:"podSelector,omitempty"`
	NamespaceSelector *LabelSelector `yaml:"namespaceSelector,omitempty" json:"namespaceSelector,omitempty"`
	IPBlock           *IPBlock       `yaml:"ipBlock,omitempty" json:"ipBlock,omitempty"`
}

// IPBlock mirrors the Kubernetes IPBlock.
type IPBlock struct {
	CIDR   string   `yaml:"cidr" json:"cidr"`
	Except []string `yaml:"except,omitempty" json:"except,omitempty"`
}

// PolicyPort mirrors NetworkPolicyPort. Port is a number or a named port;
// absent means all ports.
type PolicyPort struct {
	Protocol string       `yaml:"protocol,omitempty" json:"protocol,omitempty"` // default TCP
	Port     *IntOrString `yaml:"port,omitempty" json:"port,omitempty"`
	EndPort  int          `yaml:"endPort,omitempty" json:"endPort,omitempty"`
}

// LabelSelector mirrors metav1.LabelSelector.
type LabelSelector struct {
	MatchLabels      map[string]string          `yaml:"matchLabels,omitempty" json:"matchLabels,omitempty"`
	MatchExpressions []LabelSelectorRequirement `yaml:"matchExpressions,omitempty" json:"matchExpressions,omitempty"`
}

// LabelSelectorRequirement mirrors metav1.LabelSelectorRequirement.
type LabelSelectorRequirement struct {
	Key      string   `yaml:"key" json:"key"`
	Operator string   `yaml:"operator" json:"operator"` // In | NotIn | Exists | DoesNotExist
	Values   []string `yaml:"values,omitempty" json:"values,omitempty"`
}

// IntOrString holds a port number or a port name, as in Kubernetes.
type IntOrString struct {
	IsString bool
	IntVal   int
	StrVal   string
}
