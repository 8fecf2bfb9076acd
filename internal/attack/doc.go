// Package attack is the toolkit of the hostile-pod tests (e2e/hostile_test.go):
// it builds the packets a misbehaving pod would send and sends or watches
// them inside network namespaces.
//
// The header builders (packet.go) are pure and build IPv4, TCP, UDP, SCTP
// (with its CRC32c), ICMP, IP fragments, ARP and Ethernet by hand, so that
// tests can forge any field; Parse reads back what a capture saw. They
// carry no state and are tested without root.
//
// The Linux side (the *_linux.go files) opens every socket on a locked
// thread switched into the namespace (internal/nsutil.Do), like package
// nstest: a socket belongs for life to the namespace it was created in,
// so the returned objects send and receive there from any goroutine.
//   - Raw sends whole IPv4 packets (IP_HDRINCL): forged sources, hand-made
//     fragments, SCTP (this kernel has no SCTP sockets), floods.
//   - Recorder records IPv4 packets: Capture on an interface (AF_PACKET,
//     what reached the pod's interface before its IP stack) or ListenRaw
//     for one protocol (what the pod's stack delivered).
//   - Ping, DialTCPFrom, SendUDPFrom, LinkLocal, SendFrames (ARP and other
//     hand-made Ethernet frames) and Flood.
//
// Nothing here touches a namespace it is not given: tests pass the lab's
// pod and node namespaces.
package attack
