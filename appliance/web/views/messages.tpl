% rebase('layout.tpl', title=title, session=session, flash=flash)
% from appliance.web.dashboard_data import when, STATES
<section class="card">
<h1>Messages</h1>
<form method="get" action="/ui/messages" class="search">
  <input name="q" value="{{query.text}}" placeholder="recipient or message id">
  <select name="state"><option value="">any state</option>
  % for s in STATES:
    <option value="{{s}}" {{'selected' if s == query.state else ''}}>{{s}}</option>
  % end
  </select>
  <input name="since" value="{{query.since}}" placeholder="from (UTC) 2026-11-30 08:00">
  <input name="until" value="{{query.until}}" placeholder="to (UTC)">
  <button type="submit">Search</button>
</form>
% if query.error:
<p class="error">{{query.error}}</p>
% end
<div class="scroll" id="live"{{!' data-refresh="5"' if not query.text else ''}}>
<table id="messages">
<tr><th>Accepted (UTC)</th><th>To</th><th>User</th><th>State</th><th>Parts</th><th>Text</th></tr>
% for m in rows:
<tr><td><a href="/ui/messages/{{m['id']}}">{{when(m['created'])}}</a></td><td>{{m['recipient']}}</td>
  <td>{{m['user']}}</td><td><span class="badge state-{{m['state']}}">{{m['state']}}</span></td>
  <td>{{m['parts_total']}}</td><td class="text">{{m['body'][:80]}}</td></tr>
% end
</table>
% if not rows:
<p>No message matches.</p>
% end
</div>
</section>
