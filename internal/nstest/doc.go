// Package nstest sends real traffic inside network namespaces from Go
// tests, without external tools (no ping, nc or iperf3).
//
// A socket belongs to the network namespace of the thread that created
// it, for its whole life. ListenTCP, ListenUDP, DialTCP and DialUDP create
// their socket on a locked OS thread switched into the namespace (through
// nsutil.Do), switch the thread back, and return the socket, which keeps
// sending and receiving in that namespace from any goroutine. Nothing else
// in the process changes namespace.
//
// The servers speak a tiny protocol so that a check proves a full round
// trip and tells which server answered (useful behind a load-balanced
// service address):
//
//   - ServeEcho (TCP) writes its banner and a newline as soon as a
//     connection is accepted, then echoes every byte until the client
//     closes its side.
//   - ServeEchoUDP answers every datagram with banner, newline, datagram.
//   - ServeSink (TCP) discards what it reads and, when the client closes
//     its side, answers with the byte count in decimal and a newline.
//
// CheckTCP and CheckUDP fail the test when the round trip does not
// complete; TryTCP and TryUDP return the error instead, for negative
// checks, and IsRefused / IsTimeout tell a refusal (RST, ICMP port
// unreachable) from a silent drop.
package nstest
