// A student's home: the tests in progress and finished, a new full test or one section's practice.
import { useEffect, useState } from "react";
import { Link, useLocation } from "wouter";
import { api, call, newRequestId, type Section, type Session } from "../api/client";
import type { SignedIn } from "../auth";
import { SECTIONS, sectionName } from "./names";
import { YourSittings } from "./YourSittings";

export function Home({ user }: { user: SignedIn }) {
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [, navigate] = useLocation();
  useEffect(() => {
    call(() => api.GET("/api/sessions", { params: { query: { student_id: user.userId, page_size: 50 } } }))
      .then((reply) => {
        setSessions(reply.sessions ?? []);
      })
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  }, [user]);
  const start = (section: Section | null) => {
    setStarting(true);
    setError(null);
    const body =
      section === null
        ? { scope: "SESSION_SCOPE_FULL_TEST" as const, requestId: newRequestId() }
        : { scope: "SESSION_SCOPE_SECTION" as const, section, requestId: newRequestId() };
    call(() => api.POST("/api/sessions", { body }))
      .then((session) => {
        navigate(`/exam/${session.sessionId ?? ""}`);
      })
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
        setStarting(false);
      });
  };
  const inProgress = (sessions ?? []).filter((s) => s.state === "SESSION_STATE_IN_PROGRESS");
  const finished = (sessions ?? []).filter((s) => s.state === "SESSION_STATE_FINISHED");
  return (
    <div className="home">
      <h1>Your tests</h1>
      {error !== null ? <p role="alert">{error}</p> : null}
      <section className="card" aria-labelledby="start-heading">
        <h2 id="start-heading">Start</h2>
        <button type="button" disabled={starting} onClick={() => { start(null); }}>
          Full test
        </button>
        {SECTIONS.map((section) => (
          <button type="button" key={section} disabled={starting} onClick={() => { start(section); }}>
            {sectionName(section)} practice
          </button>
        ))}
      </section>
      <YourSittings />
      <section className="card" aria-labelledby="progress-heading">
        <h2 id="progress-heading">In progress</h2>
        {sessions === null ? <p>Loading…</p> : null}
        {sessions !== null && inProgress.length === 0 ? <p>None.</p> : null}
        <ul>
          {inProgress.map((s) => (
            <li key={s.sessionId}>
              <Link href={`/exam/${s.sessionId ?? ""}`}>{describe(s)}: continue</Link>
            </li>
          ))}
        </ul>
      </section>
      <section className="card" aria-labelledby="finished-heading">
        <h2 id="finished-heading">Finished</h2>
        {sessions !== null && finished.length === 0 ? <p>None yet.</p> : null}
        <ul>
          {finished.map((s) => (
            <li key={s.sessionId}>
              <Link href={`/report/${s.sessionId ?? ""}`}>{describe(s)}: score report</Link>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

function describe(session: Session): string {
  const what = session.scope === "SESSION_SCOPE_FULL_TEST" ? "Full test" : `${sectionName(session.section)} practice`;
  const when = session.createTime ? new Date(session.createTime).toLocaleString() : "";
  return `${what}, started ${when}${session.voidTime ? ", voided by the proctor" : ""}`;
}
