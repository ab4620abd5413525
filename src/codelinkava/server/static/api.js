// @ts-check
// Talking to the gateway: /v1/models and streamed /v1/chat/completions.
//
// Every call carries `Authorization: Bearer KEY` when a key is set. An HTTP error
// (before the first chunk) becomes an ApiError with the status, the gateway's
// message and the wait from Retry-After; an error inside the stream, or a stream
// that ends without [DONE], becomes a StreamCut. Aborting the signal cancels the
// fetch, which closes the connection: the gateway then stops the generation.

/** An HTTP error from the gateway, or status 0 when it could not be reached. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {{code?: string | null, type?: string | null, retryAfter?: number | null}} [details]
   */
  constructor(status, message, { code = null, type = null, retryAfter = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.type = type;
    this.retryAfter = retryAfter; // seconds, or null
  }
}

/** The answer stopped part-way: an error event in the stream, or the connection ended. */
export class StreamCut extends Error {
  /**
   * @param {string} message
   * @param {{code?: string | null}} [details]
   */
  constructor(message, { code = null } = {}) {
    super(message);
    this.name = "StreamCut";
    this.code = code;
  }
}

/**
 * Seconds to wait from a Retry-After value (seconds or an HTTP date), or null.
 * @param {string | null | undefined} value
 * @returns {number | null}
 */
export function parseRetryAfter(value) {
  if (!value) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function headers(key, extra = {}) {
  const out = { ...extra };
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

async function errorFrom(response) {
  let message = response.statusText || `HTTP ${response.status}`;
  let code = null;
  let type = null;
  try {
    const body = await response.json();
    if (body && body.error && typeof body.error.message === "string") {
      message = body.error.message;
      code = body.error.code ?? null;
      type = body.error.type ?? null;
    }
  } catch {
    // not JSON: keep the status text
  }
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  return new ApiError(response.status, message, { code, type, retryAfter });
}

async function request(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "the gateway could not be reached");
  }
}

/**
 * The model ids the gateway serves.
 * @param {string} key the API key, or ""
 * @param {AbortSignal} [signal]
 * @returns {Promise<string[]>}
 */
export async function listModels(key, signal) {
  const response = await request("/v1/models", { headers: headers(key), signal });
  if (!response.ok) throw await errorFrom(response);
  const body = await response.json();
  const data = Array.isArray(body?.data) ? body.data : [];
  return data.map((m) => String(m?.id ?? "")).filter(Boolean);
}

/**
 * Streams a chat completion. Calls onText(piece) for each piece of the answer and
 * onUsage(usage) for the usage chunk; resolves to {finishReason} at [DONE].
 * Throws ApiError (HTTP error), StreamCut (cut part-way) or an AbortError.
 * @param {{body: object, key: string, signal?: AbortSignal, onText: (piece: string) => void,
 *   onUsage?: (usage: any) => void}} options
 * @returns {Promise<{finishReason: string | null}>}
 */
export async function streamChat({ body, key, signal, onText, onUsage }) {
  const response = await request("/v1/chat/completions", {
    method: "POST",
    headers: headers(key, { "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await errorFrom(response);
  if (!response.body) throw new StreamCut("the gateway sent no body");
  const chunks = { finishReason: null, onText, onUsage };
  for await (const payload of eventData(response.body, signal)) {
    if (payload === "[DONE]") return { finishReason: chunks.finishReason };
    readChunk(payload, chunks);
  }
  throw new StreamCut("the connection closed before the answer was complete");
}

/**
 * The `data` of each server-sent event in a body, as the events end (blank lines);
 * other fields (event:, id:, retry:) and comments are ignored.
 * @param {ReadableStream<Uint8Array>} body
 * @param {AbortSignal | undefined} signal
 * @returns {AsyncGenerator<string>}
 */
async function* eventData(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  /** @type {string[]} */
  let data = [];
  const field = (/** @type {string} */ line) => line.slice(line.startsWith("data: ") ? 6 : 5);
  try {
    for (;;) {
      let result;
      try {
        result = await reader.read();
      } catch (err) {
        if (err.name === "AbortError" || signal?.aborted) throw err;
        throw new StreamCut("the connection to the gateway broke");
      }
      if (result.done) break;
      buffer += result.value;
      let start = 0;
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n", start)) {
        let line = buffer.slice(start, nl);
        start = nl + 1;
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "" && data.length) {
          yield data.join("\n");
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(field(line));
        }
      }
      buffer = buffer.slice(start);
    }
    if (buffer.startsWith("data:")) data.push(field(buffer));
    if (data.length) yield data.join("\n");
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * One `chat.completion.chunk` (or an in-stream error, thrown as a StreamCut).
 * @param {string} payload
 * @param {{finishReason: string | null, onText: (piece: string) => void,
 *   onUsage?: (usage: object) => void}} chunks
 */
function readChunk(payload, chunks) {
  let event;
  try {
    event = JSON.parse(payload);
  } catch {
    throw new StreamCut("the gateway sent an event that is not JSON");
  }
  if (event && event.error) {
    const error = event.error;
    throw new StreamCut(String(error.message ?? "the upstream failed"), { code: error.code });
  }
  const choice = event?.choices?.[0];
  const piece = choice?.delta?.content;
  if (typeof piece === "string" && piece) chunks.onText(piece);
  if (choice?.finish_reason) chunks.finishReason = choice.finish_reason;
  if (event?.usage && chunks.onUsage) chunks.onUsage(event.usage);
}
