/** The one user the Better Auth peer signs up, shared with the harness (which must not start the peer by importing). */
export const PEER_USER = { email: "bench-peer@example.com", password: "correct-horse-battery-staple", name: "Bench Peer" };
