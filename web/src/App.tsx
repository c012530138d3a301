// The client's pages and who may see them: anyone signed out sees the sign-in page.
import { lazy, Suspense, useEffect, useState } from "react";
import { Link, Route, Switch, useLocation } from "wouter";
import { configureSession, onBusy } from "./api/client";
import { renew, signOut, storedUser, type SignedIn } from "./auth";
import { Exam } from "./pages/Exam";
import { Home } from "./pages/Home";
import { Report } from "./pages/Report";
import { SignIn } from "./pages/SignIn";

// Staff pages load on demand: a student's browser never downloads them.
const Author = lazy(() => import("./pages/Author").then((m) => ({ default: m.Author })));
const Rater = lazy(() => import("./pages/Rater").then((m) => ({ default: m.Rater })));
const Teacher = lazy(() => import("./pages/Teacher").then((m) => ({ default: m.Teacher })));
const Sittings = lazy(() => import("./pages/Sittings").then((m) => ({ default: m.Sittings })));
const SittingPage = lazy(() => import("./pages/Sitting").then((m) => ({ default: m.SittingPage })));
const Analytics = lazy(() => import("./pages/Analytics").then((m) => ({ default: m.AnalyticsPage })));

const STAFF_LINKS: Record<string, [string, string][] | undefined> = {
  ROLE_TEACHER: [
    ["/classes", "Classes"],
    ["/sittings", "Sittings"],
  ],
  ROLE_RATER: [["/rating", "Rating queue"]],
  ROLE_AUTHOR: [["/items", "Item bank"]],
  ROLE_ADMIN: [
    ["/items", "Item bank"],
    ["/classes", "Classes"],
    ["/sittings", "Sittings"],
    ["/rating", "Rating queue"],
    ["/analytics", "Analytics"],
  ],
};

export function App() {
  const [user, setUser] = useState<SignedIn | null>(() => storedUser());
  const [busy, setBusy] = useState<number | null>(null);
  const [, navigate] = useLocation();
  useEffect(() => {
    onBusy(setBusy);
    configureSession(
      async () => {
        const current = storedUser();
        if (current === null) return false;
        const fresh = await renew(current);
        if (fresh !== null) setUser(fresh);
        return fresh !== null;
      },
      () => {
        signOut(null);
        setUser(null);
      },
    );
  }, []);
  return (
    <>
      <header className="top">
        <Link href="/" className="brand">
          TOEFL iBT practice
        </Link>
        {user !== null ? (
          <nav aria-label="Pages" className="staff-nav">
            {(STAFF_LINKS[String(user.role)] ?? []).map(([href, label]) => (
              <Link key={href} href={href}>
                {label}
              </Link>
            ))}
          </nav>
        ) : null}
        {user !== null ? (
          <span className="who">
            Signed in as {user.username}{" "}
            <button
              type="button"
              onClick={() => {
                signOut(user);
                setUser(null);
                navigate("/");
              }}
            >
              Sign out
            </button>
          </span>
        ) : null}
      </header>
      {busy !== null ? (
        <p className="busy" role="status">
          The service is busy; retrying in {busy} s.
        </p>
      ) : null}
      <main>
        {user === null ? (
          <SignIn onSignedIn={setUser} />
        ) : (
          <Suspense fallback={<p className="card">Loading…</p>}>
            <Switch>
              <Route path="/exam/:sessionId">{(params) => <Exam sessionId={params.sessionId} />}</Route>
              <Route path="/report/:sessionId">{(params) => <Report sessionId={params.sessionId} />}</Route>
              <Route path="/items">
                <Author />
              </Route>
              <Route path="/classes">
                <Teacher />
              </Route>
              <Route path="/sittings/:sittingId">
                {(params) => <SittingPage sittingId={params.sittingId} />}
              </Route>
              <Route path="/sittings">
                <Sittings />
              </Route>
              <Route path="/analytics">
                <Analytics />
              </Route>
              <Route path="/rating">
                <Rater userId={user.userId} />
              </Route>
              <Route>
                <Start user={user} />
              </Route>
            </Switch>
          </Suspense>
        )}
      </main>
    </>
  );
}

/** The first page after signing in: a student's tests, or the staff member's own work. */
function Start({ user }: { user: SignedIn }) {
  switch (user.role) {
    case "ROLE_STUDENT":
      return <Home user={user} />;
    case "ROLE_TEACHER":
      return <Teacher />;
    case "ROLE_RATER":
      return <Rater userId={user.userId} />;
    default:
      return <Author />;
  }
}
