package state

import (
	"encoding/json"
	"fmt"
)

// stateJSON is the JSON shape of a State: one list per kind.
type stateJSON struct {
	Netns   []*Netns  `json:"netns"`
	Links   []*Link   `json:"links"`
	Sysctls []*Sysctl `json:"sysctls"`
	Addrs   []*Addr   `json:"addresses"`
	Neighs  []*Neigh  `json:"neighbours"`
	Routes  []*Route  `json:"routes"`

	Datapaths []*Datapath `json:"datapaths,omitempty"`
	Services  []*Service  `json:"services,omitempty"`
	Endpoints []*Endpoint `json:"endpoints,omitempty"`
	Attaches  []*Attach   `json:"programs,omitempty"`

	PolicyIdentities []*PolicyIdentity `json:"policy_identities,omitempty"`
	PodPolicies      []*PodPolicy      `json:"pod_policies,omitempty"`
	PolicyRevisions  []*PolicyRevision `json:"policy_revisions,omitempty"`

	Masquerades []*Masquerade `json:"masquerade,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (s *State) MarshalJSON() ([]byte, error) {
	var j stateJSON
	j.Netns, j.Links, j.Sysctls = []*Netns{}, []*Link{}, []*Sysctl{}
	j.Addrs, j.Neighs, j.Routes = []*Addr{}, []*Neigh{}, []*Route{}
	for _, k := range Kinds() {
		for _, o := range s.Of(k) {
			switch v := o.(type) {
			case *Netns:
				j.Netns = append(j.Netns, v)
			case *Link:
				j.Links = append(j.Links, v)
			case *Sysctl:
				j.Sysctls = append(j.Sysctls, v)
			case *Addr:
				j.Addrs = append(j.Addrs, v)
			case *Neigh:
				j.Neighs = append(j.Neighs, v)
			case *Route:
				j.Routes = append(j.Routes, v)
			case *Datapath:
				j.Datapaths = append(j.Datapaths, v)
			case *Service:
				j.Services = append(j.Services, v)
			case *Endpoint:
				j.Endpoints = append(j.Endpoints, v)
			case *Attach:
				j.Attaches = append(j.Attaches, v)
			case *PolicyIdentity:
				j.PolicyIdentities = append(j.PolicyIdentities, v)
			case *PodPolicy:
				j.PodPolicies = append(j.PodPolicies, v)
			case *PolicyRevision:
				j.PolicyRevisions = append(j.PolicyRevisions, v)
			case *Masquerade:
				j.Masquerades = append(j.Masquerades, v)
			}
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *State) UnmarshalJSON(b []byte) error {
	var j stateJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode state: %w", err)
	}
	*s = *New()
	for _, o := range j.Netns {
		s.Put(o)
	}
	for _, o := range j.Links {
		s.Put(o)
	}
	for _, o := range j.Sysctls {
		s.Put(o)
	}
	for _, o := range j.Addrs {
		s.Put(o)
	}
	for _, o := range j.Neighs {
		s.Put(o)
	}
	for _, o := range j.Routes {
		s.Put(o)
	}
	for _, o := range j.Datapaths {
		s.Put(o)
	}
	for _, o := range j.Services {
		s.Put(o)
	}
	for _, o := range j.Endpoints {
		s.Put(o)
	}
	for _, o := range j.Attaches {
		s.Put(o)
	}
	for _, o := range j.PolicyIdentities {
		s.Put(o)
	}
	for _, o := range j.PodPolicies {
		s.Put(o)
	}
	for _, o := range j.PolicyRevisions {
		s.Put(o)
	}
	for _, o := range j.Masquerades {
		s.Put(o)
	}
	return nil
}
