# Seeds the test CAS server (run by ../../ci-install.sh through `manage.py shell`):
# users alice/alicepw (groups admins, developers) and bob/bobpw (no group), and one service pattern that accepts any
# http(s)://127.0.0.1|localhost service and releases email, username, first_name (as displayName) and groups (as
# memberOf). Releasing `*` would also leak the password hash.
from django.contrib.auth.models import Group, User
from cas_server.models import ServicePattern, ReplaceAttributName

for u, pw, mail, groups in [('alice', 'alicepw', 'alice@example.org', ['admins', 'developers']),
                            ('bob', 'bobpw', 'bob@example.org', [])]:
    user = User.objects.filter(username=u).first() or User.objects.create_user(u, mail, pw, first_name=u.title())
    for g in groups:
        user.groups.add(Group.objects.get_or_create(name=g)[0])
sp, _ = ServicePattern.objects.get_or_create(
    pos=100, name='local', defaults={'pattern': r'^https?://(127\.0\.0\.1|localhost)(:\d+)?/.*$'})
ReplaceAttributName.objects.filter(name='*', service_pattern=sp).delete()
for a, r in [('email', 'email'), ('username', 'username'), ('first_name', 'displayName'), ('groups', 'memberOf')]:
    ReplaceAttributName.objects.get_or_create(name=a, replace=r, service_pattern=sp)
print('seeded')
