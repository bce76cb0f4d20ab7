import { useEffect } from "react";
import { Loading } from "./components/Page";
import { AccountPage } from "./pages/Account";
import { ForgotPage } from "./pages/Forgot";
import { LoginPage } from "./pages/Login";
import { NotFoundPage } from "./pages/NotFound";
import { PostsPage } from "./pages/Posts";
import { ResetPage } from "./pages/Reset";
import { SignupPage } from "./pages/Signup";
import { StepUpPage } from "./pages/StepUp";
import { UsersPage } from "./pages/Users";
import { VerifyPage } from "./pages/Verify";
import { type Route, findRoute, navigate, useLocation } from "./router";

/** "/": the gateway sends it to the user's page; a dev server lands here. */
function Home() {
  useEffect(() => navigate("/account", { replace: true }), []);
  return <Loading />;
}

export const ROUTES: readonly Route<() => JSX.Element>[] = [
  { path: "/", view: Home },
  { path: "/login", view: LoginPage },
  { path: "/signup", view: SignupPage },
  { path: "/forgot", view: ForgotPage },
  { path: "/reset", view: ResetPage },
  { path: "/verify", view: VerifyPage },
  { path: "/account", view: AccountPage },
  { path: "/mfa", view: StepUpPage },
  { path: "/dashboard/", view: UsersPage },
  { path: "/dashboard/posts", view: PostsPage },
];

export function App() {
  const { pathname } = useLocation();
  const View = findRoute(ROUTES, pathname)?.view ?? NotFoundPage;
  // A new page starts from fresh state: key on the path.
  return <View key={pathname} />;
}
