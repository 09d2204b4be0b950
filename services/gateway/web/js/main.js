// The page's start: its configuration, the sign-in (if any), the two tabs.

import { Api } from "./api.js";
import { openSession, signInError } from "./auth.js";
import { byId } from "./dom.js";
import { AnalysisForm } from "./analysis.js";
import { History } from "./history.js";

const errorBox = byId("error");

function showError(error) {
  errorBox.textContent = error.message || String(error);
  errorBox.hidden = false;
  errorBox.scrollIntoView({ block: "nearest" });
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

function setUpTabs(history) {
  const tabs = [byId("tab-analysis"), byId("tab-history")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => {
      for (const other of tabs) {
        const selected = other === tab;
        other.setAttribute("aria-selected", String(selected));
        byId(other.getAttribute("aria-controls")).hidden = !selected;
      }
      clearError();
      if (tab.id === "tab-history") history.reload().catch(showError);
    });
  }
}

function setUpSignIn(session) {
  const form = byId("sign-in-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    byId("sign-in-submit").disabled = true;
    try {
      await session.signIn(byId("sign-in-email").value, byId("sign-in-password").value);
      byId("sign-in-password").value = "";
    } catch (error) {
      showError(new Error(signInError(error)));
    } finally {
      byId("sign-in-submit").disabled = false;
    }
  });
  byId("sign-out").addEventListener("click", () => session.signOut().catch(showError));
}

function showSignedIn(user, signsIn) {
  byId("starting").hidden = true;
  byId("sign-in").hidden = user !== null;
  byId("app").hidden = user === null;
  byId("tabs").hidden = user === null;
  byId("account").hidden = !(signsIn && user);
  byId("account-name").textContent = user?.name || "";
}

async function start() {
  const response = await fetch("/app/config.json");
  if (!response.ok) throw new Error(`The page's configuration could not be read (${response.status}).`);
  const config = await response.json();
  const session = await openSession(config);
  const api = new Api(session.token);
  const history = new History(api, showError);
  new AnalysisForm(api, config, { showError, clearError });
  setUpTabs(history);
  const signsIn = config.auth === "firebase";
  if (signsIn) setUpSignIn(session);
  session.watch((user) => {
    clearError();
    showSignedIn(user, signsIn);
  });
}

start().catch((error) => {
  byId("starting").hidden = true;
  showError(error);
});
