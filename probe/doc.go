// Package probe finds out whether an OpenSearch index can carry a search
// load before users are sent to it: it replays sample search bodies (a
// sample of the production query log) against the new side, and optionally
// the old side at the same time, in rising steps of a target rate, and stops
// at the first step whose latency, error rate or answer similarity breaks
// the limits.
//
// # Open-loop load
//
// Every step sends on a fixed schedule: request i of a step at rate r is due
// at start + i/r, whether or not earlier requests have been answered. A
// closed loop (send the next request when the previous answer arrives)
// slows down exactly when the cluster does, so it measures a load the
// cluster chose rather than the one asked for, and it hides the wait of
// every request it never sent ("coordinated omission"). Here:
//
//   - latency is measured from the moment a request was due, not from when
//     it left, so a late dispatcher or a full connection pool shows up as
//     latency;
//   - requests in flight are bounded per side (Config.MaxInFlight); a
//     request due while the bound is reached is not sent and counts as an
//     error ("unsent"), so an overloaded cluster raises the error rate
//     instead of silently lowering the load;
//   - requests go out from many goroutines at once over a pool of
//     connections (several concurrent clients), and the HTTP client must
//     not retry: a retried 429 would hide a rejection.
//
// # Answer similarity
//
// When an old side is given, every scheduled query goes to both sides at
// the same moment and the top-k document ids of the two answers are
// compared: overlap = |top-k(old) ∩ top-k(new)| / max(|top-k(old)|,
// |top-k(new)|), 1 when both are empty. Two indices holding the same
// documents overlap 100 %; a copy with missing or different documents
// overlaps less. Documents with equal scores may be ordered differently by
// two indices (different segment layouts), so queries whose k-th hit ties
// with the (k+1)-th can differ at the boundary even between equal indices;
// a tie-breaking sort in the sample bodies avoids that.
package probe
