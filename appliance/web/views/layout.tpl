<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}} · sms-appliance</title>
<link rel="stylesheet" href="/ui/static/app.css">
<script src="/ui/static/app.js" defer></script>
</head>
<body>
<header>
  <a class="brand" href="/">sms-appliance</a>
  % if session:
  <nav>
    <a href="/">Overview</a>
    <a href="/ui/messages">Messages</a>
    <a href="/ui/inbox">Inbox</a>
    <a href="/ui/send">Send</a>
    % if session.admin:
    <a href="/ui/admin">Admin</a>
    % end
    <form method="post" action="/logout" class="inline">
      <input type="hidden" name="csrf" value="{{session.csrf}}">
      <button type="submit" class="link" id="logout">Log out {{session.user}}</button>
    </form>
  </nav>
  % end
</header>
<main>
% if flash:
<p class="flash" id="flash">{{flash}}</p>
% end
{{!base}}
</main>
</body>
</html>
