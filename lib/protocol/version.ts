/**
 * The one protocol version of tml's wire protocols (REST API, switchboard-supervisor websocket,
 * supervisor-puppet channel). Bump it on any change a peer must know about, and add a line below.
 * A peer older than `MIN_PEER_PROTOCOL_VERSION` is refused with a message naming both versions.
 *
 * History:
 * - 1 (2026-11-23): first version: REST v1, supervisor websocket with hello/ack/keepalive and
 *   job start/stop/update, framed JSON puppet channel.
 * - 2 (2026-11-23): supervisors stream a job's console with `console_output`; version 1
 *   supervisors (no console) are still accepted.
 * - 3 (2026-11-23): the rendezvous proxy (`lib/protocol/rendezvous.ts`): supervisors dial a
 *   rendezvous server, and the REST API mints rendezvous grants, user tokens and signing keys.
 *   The switchboard-supervisor websocket is unchanged, so version 1 and 2 peers still work.
 * - 4 (2026-12-03): warm start: a supervisor may resume a job's VM from a snapshot taken while
 *   its puppet awaited the answer to `auth`; it then sends `restored {time_ms}`, and the puppet
 *   sets its clock, reads its (new) secret again and authenticates anew. Only puppets of version
 *   4 or later are snapshotted; older peers are still accepted.
 */
export const PROTOCOL_VERSION = 4;

/** The first puppet protocol version that understands `restored` (warm start). */
export const RESTORABLE_PUPPET_VERSION = 4;

/** The oldest peer protocol version this build still speaks. */
export const MIN_PEER_PROTOCOL_VERSION = 1;

/** Says why a peer speaking `peerVersion` is refused, or undefined when it is accepted. */
export function protocolMismatch(peerVersion: number): string | undefined {
  if (peerVersion < MIN_PEER_PROTOCOL_VERSION) {
    return `Cannot accept peer: it speaks protocol version ${peerVersion}, this switchboard needs ` +
      `at least ${MIN_PEER_PROTOCOL_VERSION} (this side speaks ${PROTOCOL_VERSION}); upgrade the peer`;
  }
  return undefined;
}
