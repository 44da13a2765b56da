// views/login.js — the sign-in page the shell shows instead of a view when the collector asks
// for a bearer token and none (or a refused one) is stored. It checks the token with
// /api/v1/whoami before the shell keeps it; the URL is left alone, so that after signing in
// the user lands on the view and search they were going to.
// The token field has no `name`: were the form ever submitted natively, it would not be sent.

import { whoAmI } from '../lib/api.js';

const MARKUP = `
<section class="login">
  <form class="login-form panel" method="post" action="#">
    <h2>Sign in</h2>
    <p class="login-hint">This collector asks for an access token. Paste the one you were given
      (<code>afterglow-collector token new</code> makes them). It is kept in this tab until you sign
      out or close it.</p>
    <div class="field">
      <label for="login-token">Access token</label>
      <input id="login-token" type="password" autocomplete="off" autocapitalize="off" spellcheck="false" required>
    </div>
    <div class="error" id="login-error" role="alert" hidden></div>
    <button class="primary" id="login-submit" type="submit">Sign in</button>
  </form>
</section>`;

/**
 * Shows the sign-in form in `root`, with `message` (why the user is here again, e.g. a token
 * the collector no longer accepts) as its error. Calls `onSignedIn(token, who)` with a token
 * the collector accepted and its whoami answer. Returns the unmount function.
 */
export function mount(root, { message = '', onSignedIn }) {
  root.innerHTML = MARKUP;
  const form = root.querySelector('.login-form');
  const input = root.querySelector('#login-token');
  const submit = root.querySelector('#login-submit');
  const errorBox = root.querySelector('#login-error');
  let mounted = true;

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      showError('Paste a token first.');
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Checking…';
    try {
      const who = await whoAmI(token);
      if (!mounted) return;
      input.value = '';
      onSignedIn(token, who);
    } catch (error) {
      if (!mounted) return;
      showError(error?.message ?? String(error));
      input.select();
      input.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });

  showError(message);
  input.focus();
  return () => {
    mounted = false;
  };
}
