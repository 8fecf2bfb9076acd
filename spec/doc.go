// Package spec reads the netreconcile topology file and turns it into the
// desired model the rest of the program works from.
//
// It is the first of the four representations (spec → desired → observed →
// plan): [Parse] decodes the file strictly (unknown fields, duplicate keys,
// wrong types and runaway aliases are errors) and records where every field
// sits in the file; [Resolve] checks the meaning of the whole topology,
// applies defaults and allocates pod addresses, producing a [Resolved] that
// later stages read without re-validating. [Load] does both for a set of
// [Source]s (read by a [Provider] such as [Files]), merged into one
// topology; [Parser] and [ParseCache] load a set again decoding only what
// changed, file by file.
//
// Every problem found is reported at once, as one [*Errors] whose lines read
// `file:line:column: field.path: message`, so that a user fixes a file in one
// pass and bad input never reaches the kernel. Nothing in this package does
// I/O beyond reading the files.
package spec
