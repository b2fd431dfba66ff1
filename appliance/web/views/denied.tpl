% rebase('layout.tpl', title=title, session=session, flash=flash)
<section class="card"><h1>{{title}}</h1><p><a href="/">Back to the overview</a></p></section>
