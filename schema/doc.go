// Package schema holds the JSON Schema of the topology file and checks
// documents against it.
//
// The schema (topology.schema.json, draft 2020-12) is for editors and CI:
// it gives completion, descriptions and structural checks (field names,
// types, enums, formats) without running netreconcile. It is not the
// authority on validity: spec.Load also checks what a schema cannot say
// (addresses inside CIDRs, uniqueness, references between objects). A test
// keeps the schema's properties in step with the Go types in spec.
package schema
