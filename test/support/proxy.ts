import type { Socket, TCPSocketListener } from "bun";

/** One side of a forwarded connection: writes what the socket could not take yet once it drains. */
type Side = { socket?: Socket<Link>; queued: Uint8Array[] };
type Link = { client: Side; upstream: Side; held: Array<{ to: Side; data: Uint8Array }> };

function send(side: Side, data: Uint8Array): void {
  if (!side.socket || side.queued.length) {
    side.queued.push(data.slice());
    return;
  }
  const written = side.socket.write(data);
  if (written < data.length) side.queued.push(data.slice(written));
}

function flush(side: Side): void {
  while (side.socket && side.queued.length) {
    const next = side.queued[0] as Uint8Array;
    const written = side.socket.write(next);
    if (written < next.length) {
      side.queued[0] = next.slice(written);
      return;
    }
    side.queued.shift();
  }
}

/**
 * A TCP forwarder to a real Postgres or Redis that the test can cut and restore, so the machine's servers, which
 * other people use, are never stopped. Cut: open connections are dropped and new ones closed at once. Silence:
 * connections stay open (and new ones are accepted) but no byte passes either way until `restore()`, as when a
 * network drops every packet: TCP itself reports nothing. `cutAt(text)`: the next connection whose client sends
 * bytes containing `text` (a statement, a command) is dropped before they reach the server.
 */
export class CuttableProxy {
  private up = true;
  private silent = false;
  private cutOn?: string;
  private readonly links = new Set<Link>();
  private listener?: TCPSocketListener<Link>;

  constructor(
    private readonly target: { hostname: string; port: number },
  ) {}

  start(): number {
    const proxy = this;
    this.listener = Bun.listen<Link>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(client) {
          if (!proxy.up) {
            client.terminate();
            return;
          }
          const link: Link = { client: { socket: client, queued: [] }, upstream: { queued: [] }, held: [] };
          client.data = link;
          proxy.links.add(link);
          Bun.connect<Link>({
            ...proxy.target,
            data: link,
            socket: {
              open(upstream) {
                link.upstream.socket = upstream;
                flush(link.upstream);
              },
              data(_upstream, data) {
                proxy.forward(link, link.client, data);
              },
              drain() {
                flush(link.upstream);
              },
              close() {
                link.client.socket?.end();
              },
              error() {
                link.client.socket?.terminate();
              },
            },
          }).catch(() => client.terminate());
        },
        data(client, data) {
          const link = client.data;
          if (proxy.cutOn && Buffer.from(data).toString("latin1").includes(proxy.cutOn)) {
            proxy.cutOn = undefined;
            link.client.socket?.terminate();
            link.upstream.socket?.terminate();
            proxy.links.delete(link);
            return;
          }
          proxy.forward(link, link.upstream, data);
        },
        drain(client) {
          flush(client.data.client);
        },
        close(client) {
          if (!client.data) return;
          client.data.upstream.socket?.end();
          proxy.links.delete(client.data);
        },
      },
    });
    return this.listener.port;
  }

  private forward(link: Link, to: Side, data: Uint8Array): void {
    if (this.silent) link.held.push({ to, data: data.slice() });
    else send(to, data);
  }

  /** Nothing passes, nothing is closed. */
  silence(): void {
    this.silent = true;
  }

  /** Drops the connection that next sends `text`. */
  cutAt(text: string): void {
    this.cutOn = text;
  }

  cut(): void {
    this.up = false;
    for (const link of this.links) {
      link.client.socket?.terminate();
      link.upstream.socket?.terminate();
    }
    this.links.clear();
  }

  restore(): void {
    this.up = true;
    this.silent = false;
    this.cutOn = undefined;
    // What was sent meanwhile arrives late, as TCP would deliver it.
    for (const link of this.links) for (const { to, data } of link.held.splice(0)) send(to, data);
  }

  stop(): void {
    this.cut();
    this.listener?.stop(true);
  }
}

