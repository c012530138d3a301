// A teacher's classes: the roster with each student's latest score, and a student's tests and reports (read-only).
import { useEffect, useState } from "react";
import { Link } from "wouter";
import { api, call, type Schemas, type Session } from "../api/client";
import { AccommodationForm } from "./Accommodation";
import { count, inTestOrder, sectionName } from "./names";

type Class = Schemas["toefl.session.v1.Class"];
type Roster = Schemas["toefl.session.v1.ClassRoster"];

export function Teacher() {
  const [classes, setClasses] = useState<Class[] | null>(null);
  const [roster, setRoster] = useState<Roster | null>(null);
  const [student, setStudent] = useState<{ id: string; name: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    call(() => api.GET("/api/classes", { params: { query: { page_size: 100 } } }))
      .then((reply) => {
        setClasses(reply.classes ?? []);
      })
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  }, []);
  const open = (classId: string) => {
    setStudent(null);
    call(() => api.GET("/api/classes/{class_id}/roster", { params: { path: { class_id: classId } } }))
      .then(setRoster)
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  };
  return (
    <div>
      <h1>Your classes</h1>
      {error !== null ? <p role="alert">{error}</p> : null}
      {classes !== null && classes.length === 0 ? <p className="card">You have no classes yet.</p> : null}
      <ul className="card">
        {(classes ?? []).map((c) => (
          <li key={c.classId}>
            <button
              type="button"
              onClick={() => {
                open(c.classId ?? "");
              }}
            >
              {c.name} ({count(c.studentIds?.length ?? 0, "student")})
            </button>
          </li>
        ))}
      </ul>
      {roster !== null ? (
        <table className="card">
          <caption>Roster of {roster.name}</caption>
          <thead>
            <tr>
              <th scope="col">Student</th>
              <th scope="col">Latest score</th>
              <th scope="col">Tests in progress</th>
              <th scope="col">Tests finished</th>
            </tr>
          </thead>
          <tbody>
            {(roster.students ?? []).map((entry) => (
              <tr key={entry.studentId}>
                <th scope="row">
                  <button
                    type="button"
                    className="link"
                    onClick={() => {
                      setStudent({ id: entry.studentId ?? "", name: entry.displayName ?? "" });
                    }}
                  >
                    {entry.displayName || entry.studentId}
                  </button>
                </th>
                <td>{latestScore(entry.latestScore)}</td>
                <td>{entry.sessionsInProgress ?? 0}</td>
                <td>{entry.sessionsFinished ?? 0}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {student !== null ? <StudentSessions studentId={student.id} name={student.name} /> : null}
      {student !== null ? <AccommodationForm key={student.id} studentId={student.id} name={student.name} /> : null}
    </div>
  );
}

/** The overall band of a full test, or each section's band of a section's practice. */
function latestScore(score: Schemas["toefl.session.v1.ScoreVersion"] | null | undefined): string {
  if (!score) return "–";
  if (score.totalBand) return `overall ${score.totalBand}`;
  const sections = inTestOrder(score.sections ?? []).filter((s) => s.band);
  return sections.length > 0 ? sections.map((s) => `${sectionName(s.section)} ${s.band ?? ""}`).join(", ") : "–";
}

function StudentSessions({ studentId, name }: { studentId: string; name: string }) {
  const [sessions, setSessions] = useState<Session[] | null>(null);
  useEffect(() => {
    call(() => api.GET("/api/sessions", { params: { query: { student_id: studentId, page_size: 50 } } }))
      .then((reply) => {
        setSessions(reply.sessions ?? []);
      })
      .catch(() => {
        setSessions([]);
      });
  }, [studentId]);
  return (
    <section className="card" aria-label={`Tests of ${name}`}>
      <h2>Tests of {name || studentId}</h2>
      {sessions === null ? <p>Loading…</p> : null}
      <ul>
        {(sessions ?? []).map((s) => (
          <li key={s.sessionId}>
            {s.scope === "SESSION_SCOPE_FULL_TEST" ? "Full test" : `${sectionName(s.section)} practice`},{" "}
            {s.state === "SESSION_STATE_FINISHED" ? (
              <Link href={`/report/${s.sessionId ?? ""}`}>finished: score report</Link>
            ) : (
              "in progress"
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
