% rebase('layout.tpl', title=title, session=session, flash=flash)
<section class="card narrow">
<h1>Log in</h1>
% if error:
<p class="error" id="login-error">{{error}}</p>
% end
<form method="post" action="/login">
  <input type="hidden" name="login_token" value="{{login_token}}">
  <label>User <input name="username" autocomplete="username" required autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit" id="login-button">Log in</button>
</form>
% if demo:
<p class="hint" id="demo-password-hint">Demo mode: the admin password is the one given with
<code>--admin-password</code>, else the one shown once when the daemon first started;
<code>sms-appliance passwd --state-dir DIR</code> sets a new one.</p>
% end
</section>
