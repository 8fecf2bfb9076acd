// Package reach compares two versions of a topology file with no kernel:
// the objects added, changed and removed, the service backends gained and
// lost, and the pod-to-pod and pod-to-service connections, per declared
// port and protocol, whose policy verdict changes.
//
// Verdicts come from the evaluator explain uses (policy.Judge), and a
// connection to a service is judged as the datapath judges it, after
// translation: against each backend pod on its target port, allowed only
// when every backend allows it (explain's ALLOWED). A service or service
// port that one file lacks, or that has no backend there, is denied in that
// file. Connections from or to a pod that only one file declares are not
// compared (the pod shows as added or removed), nor ports the destination
// declares in only one file.
//
// Scale: pods are grouped into classes of identical namespace, labels (of
// the keys some policy's pod selector names), declared ports and
// membership of every ipBlock the policies name, in both files, so that
// each question is asked once per pair of classes (policy.Judge, the
// evaluator indexed once, without the texts that say why). A verdict can
// only change for a source whose class changed or that a changed policy
// selects for egress, or for a destination whose class changed or that a
// changed policy selects for ingress; only those rows and columns are
// evaluated. A namespace's label change reaches verdicts only through the
// namespaceSelectors of other policies, so its pods are paired only with
// the pods of namespaces whose policies have one that matches the old and
// the new labels differently. A connection to a service is judged again
// only when its backends changed or for sources whose verdict toward one
// of its backends may have.
package reach
