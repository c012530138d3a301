// A student's score report: section bands with their range, CEFR, the comparable 0-120 total, provisional or final.
import { useEffect, useState } from "react";
import { Link } from "wouter";
import { api, call, type ScoreReport } from "../api/client";
import { inTestOrder, sectionName } from "./names";

export function Report({ sessionId }: { sessionId: string }) {
  const [report, setReport] = useState<ScoreReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    call(() =>
      api.GET("/api/sessions/{session_id}/scoreReport", { params: { path: { session_id: sessionId } } }),
    )
      .then(setReport)
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  }, [sessionId]);
  if (error !== null) return <p role="alert" className="card">{error}</p>;
  if (report === null) return <p className="card">Loading your scores…</p>;
  const score = report.score ?? {};
  const final = score.status === "SCORE_STATUS_FINAL";
  const total = score.comparableTotal;
  if (report.voided && (score.sections ?? []).length === 0) {
    // What a student reads of a test their proctor voided: a sentence, no score.
    return (
      <div className="report card">
        <h1>Score report</h1>
        <p>Your proctor voided this test, so it has no score. The answers you gave are kept.</p>
        <Link href="/">Back to your tests</Link>
      </div>
    );
  }
  return (
    <div className="report card">
      <h1>Score report</h1>
      {report.voided ? (
        <p>A proctor voided this test: its scores are withheld from the student, the roster and the analytics.</p>
      ) : null}
      <p>{final ? "These scores are final." : "These scores are provisional: some answers are still being rated."}</p>
      <table>
        <caption>Section scores (bands 1 to 6 in half-band steps)</caption>
        <thead>
          <tr>
            <th scope="col">Section</th>
            <th scope="col">Band</th>
            <th scope="col">Range</th>
            <th scope="col">CEFR</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {inTestOrder(score.sections ?? []).map((section) => (
            <tr key={section.section}>
              <th scope="row">{sectionName(section.section)}</th>
              <td>{section.band || "not reported"}</td>
              <td>{section.bandLow && section.bandHigh ? `${section.bandLow} to ${section.bandHigh}` : "–"}</td>
              <td>{section.cefr || "–"}</td>
              <td>{section.status === "SCORE_STATUS_FINAL" ? "final" : "provisional"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {score.totalBand ? (
        <p>
          Overall band {score.totalBand}
          {score.totalCefr ? ` (CEFR ${score.totalCefr})` : ""}
          {total?.low !== undefined && total.high !== undefined
            ? `; on the former 0-120 scale about ${total.midpoint ?? ""} (between ${total.low} and ${total.high}).`
            : "."}
        </p>
      ) : null}
      {(score.sections ?? []).some((section) => !section.band) ? (
        <p>
          A section&apos;s band is reported only when at least half of its questions were answered: fewer answers
          cannot place you on the scale.
        </p>
      ) : null}
      <p className="explain">
        The range is where your band would most likely fall if you took the test again on another day: a single
        test cannot measure your level exactly.
      </p>
      {(report.pendingSections ?? []).length > 0 ? (
        <p>Waiting for rating: {(report.pendingSections ?? []).map(sectionName).join(", ")}.</p>
      ) : null}
      <Link href="/">Back to your tests</Link>
    </div>
  );
}
