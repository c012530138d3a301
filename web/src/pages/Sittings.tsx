// A teacher's (or an admin's) sittings: those of their classes, latest opening first, and a form to schedule one.
import { useEffect, useState, type SyntheticEvent } from "react";
import { Link, useLocation } from "wouter";
import { api, call, type Schemas, type Section } from "../api/client";
import { SECTIONS, sectionName, testName, when } from "./names";

type Class = Schemas["toefl.session.v1.Class"];
export type Sitting = Schemas["toefl.session.v1.Sitting"];

export function Sittings() {
  const [classes, setClasses] = useState<Class[]>([]);
  const [sittings, setSittings] = useState<Sitting[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const failed = (reason: unknown) => {
      setError(reason instanceof Error ? reason.message : String(reason));
    };
    call(() => api.GET("/api/classes", { params: { query: { page_size: 100 } } }))
      .then((reply) => {
        setClasses(reply.classes ?? []);
      })
      .catch(failed);
    call(() => api.GET("/api/sittings", { params: { query: { page_size: 100 } } }))
      .then((reply) => {
        setSittings(reply.sittings ?? []);
      })
      .catch(failed);
  }, []);
  const className = (classId: string | null | undefined) =>
    classes.find((c) => c.classId === classId)?.name ?? classId ?? "";
  return (
    <div>
      <h1>Sittings</h1>
      {error !== null ? <p role="alert">{error}</p> : null}
      {sittings !== null && sittings.length === 0 ? <p className="card">No sitting is scheduled yet.</p> : null}
      {sittings !== null && sittings.length > 0 ? (
        <table className="card">
          <caption>Sittings of your classes, latest first</caption>
          <thead>
            <tr>
              <th scope="col">Sitting</th>
              <th scope="col">Class</th>
              <th scope="col">Test</th>
              <th scope="col">Opens</th>
              <th scope="col">Closes</th>
              <th scope="col">Access code</th>
            </tr>
          </thead>
          <tbody>
            {sittings.map((s) => (
              <tr key={s.sittingId}>
                <th scope="row">
                  <Link href={`/sittings/${s.sittingId ?? ""}`}>{s.title || s.sittingId}</Link>
                </th>
                <td>{className(s.classId)}</td>
                <td>{testName(s)}</td>
                <td>{when(s.openTime)}</td>
                <td>{when(s.closeTime)}</td>
                <td>{s.accessCode || "none"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {classes.length > 0 ? <NewSitting classes={classes} /> : null}
    </div>
  );
}

/** A datetime-local input's value (local time, to the minute) for `date`. */
function localInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const DEFAULT_HOURS = 3;

function NewSitting({ classes }: { classes: Class[] }) {
  const [, navigate] = useLocation();
  const [classId, setClassId] = useState(classes[0]?.classId ?? "");
  const [title, setTitle] = useState("");
  const [test, setTest] = useState<"FULL" | Section>("FULL");
  const [blueprint, setBlueprint] = useState("");
  // Opening now (to the minute) and closing a few hours later, unless changed.
  const [opens, setOpens] = useState(() => localInput(new Date()));
  const [closes, setCloses] = useState(() => localInput(new Date(Date.now() + DEFAULT_HOURS * 3_600_000)));
  const [accessCode, setAccessCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    setSaving(true);
    setError(null);
    const sitting: Sitting = {
      classId,
      title,
      scope: test === "FULL" ? "SESSION_SCOPE_FULL_TEST" : "SESSION_SCOPE_SECTION",
      openTime: new Date(opens).toISOString(),
      closeTime: new Date(closes).toISOString(),
      accessCode,
      ...(test !== "FULL" ? { section: test } : {}),
      ...(blueprint.trim() !== "" ? { blueprintVersion: blueprint.trim() } : {}),
    };
    call(() => api.POST("/api/sittings", { body: sitting }))
      .then((created) => {
        navigate(`/sittings/${created.sittingId ?? ""}`);
      })
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
        setSaving(false);
      });
  };
  return (
    <form className="card" aria-labelledby="new-sitting" onSubmit={submit}>
      <h2 id="new-sitting">Schedule a sitting</h2>
      <label>
        Class{" "}
        <select
          value={classId}
          onChange={(event) => {
            setClassId(event.target.value);
          }}
        >
          {classes.map((c) => (
            <option key={c.classId} value={c.classId ?? ""}>
              {c.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Title{" "}
        <input
          required
          value={title}
          onChange={(event) => {
            setTitle(event.target.value);
          }}
        />
      </label>
      <label>
        Test{" "}
        <select
          value={test}
          onChange={(event) => {
            setTest(event.target.value as "FULL" | Section);
          }}
        >
          <option value="FULL">Full test</option>
          {SECTIONS.map((section) => (
            <option key={section} value={section}>
              {sectionName(section)} section
            </option>
          ))}
        </select>
      </label>
      <label>
        Blueprint version (empty: the current one){" "}
        <input
          value={blueprint}
          onChange={(event) => {
            setBlueprint(event.target.value);
          }}
        />
      </label>
      <label>
        Opens{" "}
        <input
          type="datetime-local"
          required
          value={opens}
          onChange={(event) => {
            setOpens(event.target.value);
          }}
        />
      </label>
      <label>
        Closes (at most 7 days later){" "}
        <input
          type="datetime-local"
          required
          value={closes}
          onChange={(event) => {
            setCloses(event.target.value);
          }}
        />
      </label>
      <label>
        Access code (optional: students must type it to start){" "}
        <input
          value={accessCode}
          autoComplete="off"
          onChange={(event) => {
            setAccessCode(event.target.value);
          }}
        />
      </label>
      {error !== null ? <p role="alert">{error}</p> : null}
      <button type="submit" disabled={saving}>
        Schedule the sitting
      </button>
    </form>
  );
}
