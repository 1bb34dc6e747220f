import { Webhook } from "standardwebhooks";

/** What the receiver does with the next requests: 2xx, another status, a redirect, never answer, or a 200 whose body breaks. */
export type ReceiverMode = "ok" | "fail" | "redirect" | "hang" | "broken";

export type ReceivedWebhook = {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  event: { type: string; timestamp: string; data: Record<string, unknown> };
  /** What the receiver answered. */
  answered: ReceiverMode;
  at: number;
};

/**
 * A real HTTP endpoint on 127.0.0.1 (Bun.serve) that records every webhook it is sent; `mode` says how it answers.
 * `delivered()` are the requests it answered 2xx, which the server must count as delivered.
 */
export function startReceiver(initial: ReceiverMode = "ok", port = 0) {
  let mode: ReceiverMode = initial;
  const received: ReceivedWebhook[] = [];
  const hanging: Array<() => void> = [];
  const server: Bun.Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port,
    idleTimeout: 30,
    async fetch(request): Promise<Response> {
      const body = await request.text();
      const answered = mode;
      received.push({
        id: request.headers.get("webhook-id") ?? "",
        timestamp: request.headers.get("webhook-timestamp") ?? "",
        signature: request.headers.get("webhook-signature") ?? "",
        body,
        event: JSON.parse(body),
        answered,
        at: Date.now(),
      });
      if (answered === "ok") return new Response(null, { status: 204 });
      if (answered === "fail") return new Response("down", { status: 500 });
      if (answered === "redirect") return new Response(null, { status: 302, headers: { location: `http://127.0.0.1:${server.port}/elsewhere` } });
      if (answered === "broken") {
        // The status line and headers go out, then the body stream fails: the answer never completes.
        return new Response(new ReadableStream({ pull: (controller) => controller.error(new Error("receiver broke")) }), { status: 200 });
      }
      return new Promise<Response>((resolve) => hanging.push(() => resolve(new Response(null, { status: 204 }))));
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hooks`,
    received,
    set mode(next: ReceiverMode) {
      mode = next;
    },
    get mode() {
      return mode;
    },
    delivered: () => received.filter((r) => r.answered === "ok"),
    ofType: (type: string) => received.filter((r) => r.event.type === type),
    /** Waits until `check` holds of what was received, polling; fails after `timeoutMs`. */
    async waitFor(check: (received: ReceivedWebhook[]) => boolean, timeoutMs = 15_000, what = "webhooks"): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!check(received)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${received.map((r) => `${r.event.type}:${r.answered}`).join(", ")}`);
        await Bun.sleep(20);
      }
    },
    async stop() {
      for (const release of hanging.splice(0)) release();
      await server.stop(true);
    },
  };
}

export type Receiver = ReturnType<typeof startReceiver>;

/**
 * A TCP endpoint that reads the request and closes the socket without a word: no status, no headers.
 */
export function startSocketCloser() {
  let connections = 0;
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket) {
        connections++;
        socket.end();
      },
    },
  });
  return {
    url: `http://127.0.0.1:${listener.port}/hooks`,
    get connections() {
      return connections;
    },
    stop: () => listener.stop(true),
  };
}

/** A `whsec_` secret of `bytes` random bytes, as WEBHOOK_SECRET takes it. */
export const newSecret = (bytes = 32) => `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64")}`;

/** Verifies a received webhook with the reference `standardwebhooks` package; throws when the signature is not good. */
export function verifyWith(secret: string, hook: ReceivedWebhook): unknown {
  return new Webhook(secret).verify(hook.body, { "webhook-id": hook.id, "webhook-timestamp": hook.timestamp, "webhook-signature": hook.signature });
}
