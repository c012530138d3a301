// A student's sittings: those of their classes still to close, each started here (with its access code if it asks
// for one), the request id kept until the server answered so a retry starts one test only.
import { useEffect, useRef, useState, type SyntheticEvent } from "react";
import { useLocation } from "wouter";
import { api, ApiError, call, newRequestId, OfflineError } from "../api/client";
import { testName, when } from "./names";
import type { Sitting } from "./Sittings";

export function YourSittings() {
  const [sittings, setSittings] = useState<Sitting[]>([]);
  useEffect(() => {
    call(() => api.GET("/api/sittings", { params: { query: { page_size: 50 } } }))
      .then((reply) => {
        const now = Date.now();
        setSittings((reply.sittings ?? []).filter((s) => s.closeTime && new Date(s.closeTime).getTime() > now));
      })
      .catch(() => {
        // No sittings shown; practice stays possible.
      });
  }, []);
  if (sittings.length === 0) return null;
  return (
    <section className="card" aria-labelledby="sittings-heading">
      <h2 id="sittings-heading">Your sittings</h2>
      <ul>
        {sittings.map((sitting) => (
          <li key={sitting.sittingId}>
            <StartSitting sitting={sitting} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function StartSitting({ sitting }: { sitting: Sitting }) {
  const [, navigate] = useLocation();
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const requestId = useRef<string | null>(null);
  const title = sitting.title || "Sitting";
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    setStarting(true);
    setError(null);
    requestId.current ??= newRequestId();
    const body = { sittingId: sitting.sittingId ?? "", accessCode: code, requestId: requestId.current };
    call(() => api.POST("/api/sessions", { body }))
      .then((session) => {
        navigate(`/exam/${session.sessionId ?? ""}`);
      })
      .catch((reason: unknown) => {
        // A refusal (a wrong code, say) is final for this id; no answer, or the server's trouble, is tried again
        // with the same one.
        const retryable = reason instanceof OfflineError || (reason instanceof ApiError && reason.status >= 500);
        if (!retryable) requestId.current = null;
        setError(reason instanceof Error ? reason.message : String(reason));
        setStarting(false);
      });
  };
  return (
    <form aria-label={title} onSubmit={submit}>
      <strong>{title}</strong>: {testName(sitting)}, open from {when(sitting.openTime)} until{" "}
      {when(sitting.closeTime)}.{" "}
      {sitting.hasAccessCode ? (
        <label className="inline">
          Access code{" "}
          <input
            value={code}
            autoComplete="off"
            required
            onChange={(event) => {
              setCode(event.target.value);
            }}
          />
        </label>
      ) : null}
      <button type="submit" disabled={starting}>
        Start {title}
      </button>
      {error !== null ? <p role="alert">{error}</p> : null}
    </form>
  );
}
