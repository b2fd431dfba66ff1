% rebase('layout.tpl', title=title, session=session, flash=flash)
% from appliance.web.dashboard_data import when
<section class="card" id="live" data-refresh="5">
<h1>Inbox</h1>
<p class="hint">Long messages are shown once, joined from their parts.</p>
% for m in rows:
<article class="sms {{'unread' if not m['is_read'] else ''}}">
  <header><b>{{m['originator']}}</b> → {{m['recipient'] or m['connection']}}
    <time>{{when(m['created'])}}</time> <small>on {{m['connection']}}</small></header>
  <p class="text">{{m['body']}}</p>
</article>
% end
% if not rows:
<p>No message received yet.</p>
% end
</section>
