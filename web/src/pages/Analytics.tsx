// Admin analytics: band distribution per section, routing rates and time per task type, drawn by Chart.js, with
// the same figures in a table for screen readers.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Title,
  Tooltip,
  type ChartConfiguration,
} from "chart.js";
import { useEffect, useRef, useState } from "react";
import { api, call, type Schemas } from "../api/client";
import { sectionName, taskTypeName } from "./names";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Title, Tooltip);

type Analytics = Schemas["toefl.session.v1.Analytics"];

export function AnalyticsPage() {
  const [analytics, setAnalytics] = useState<Analytics | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    call(() => api.GET("/api/analytics", { params: { query: {} } }))
      .then(setAnalytics)
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  }, []);
  if (error !== null) return <p role="alert">{error}</p>;
  if (analytics === null) return <p className="card">Loading the last 30 days…</p>;
  const distributions = analytics.bandDistributions ?? [];
  const bands = [...new Set(distributions.flatMap((d) => (d.bands ?? []).map((b) => b.band ?? "")))].sort();
  const routing = analytics.routing ?? [];
  const times = analytics.taskTimes ?? [];
  const started = (analytics.days ?? []).reduce((n, d) => n + (d.sessionsStarted ?? 0), 0);
  const finished = (analytics.days ?? []).reduce((n, d) => n + (d.sessionsFinished ?? 0), 0);
  return (
    <div>
      <h1>Analytics, last 30 days</h1>
      <p>
        {started} tests started, {finished} finished.
      </p>
      <BarChart
        title="Band distribution per section"
        labels={bands}
        series={distributions.map((d) => ({
          label: sectionName(d.section),
          data: bands.map((band) => (d.bands ?? []).find((b) => b.band === band)?.count ?? 0),
        }))}
      />
      <BarChart
        title="Routing after the first module"
        labels={routing.map((r) => sectionName(r.section))}
        series={[
          { label: "to the lower module", data: routing.map((r) => r.routedLower ?? 0) },
          { label: "to the upper module", data: routing.map((r) => r.routedUpper ?? 0) },
        ]}
      />
      <BarChart
        title="Mean seconds per response, by task type"
        labels={times.map((t) => taskTypeName(t.taskType))}
        series={[{ label: "seconds", data: times.map((t) => Math.round(t.meanSeconds ?? 0)) }]}
      />
    </div>
  );
}

interface Series {
  label: string;
  data: number[];
}

const COLOURS = ["#123f6e", "#d9822b", "#2b8a3e", "#862e9c", "#c92a2a"];

function BarChart({ title, labels, series }: { title: string; labels: string[]; series: Series[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (canvas.current === null) return;
    const config: ChartConfiguration<"bar"> = {
      type: "bar",
      data: {
        labels,
        datasets: series.map((s, i) => ({ ...s, backgroundColor: COLOURS[i % COLOURS.length] })),
      },
      options: { animation: false, plugins: { title: { display: true, text: title } } },
    };
    const chart = new Chart(canvas.current, config);
    return () => {
      chart.destroy();
    };
  }, [title, labels, series]);
  return (
    <figure className="card chart">
      <canvas ref={canvas} role="img" aria-label={title} />
      <figcaption>
        <table>
          <caption>{title}</caption>
          <thead>
            <tr>
              <th scope="col">Category</th>
              {series.map((s) => (
                <th scope="col" key={s.label}>
                  {s.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {labels.map((label, row) => (
              <tr key={label}>
                <th scope="row">{label}</th>
                {series.map((s) => (
                  <td key={s.label}>{s.data[row]}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </figcaption>
    </figure>
  );
}
