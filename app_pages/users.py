"""Users: accounts, teacher logins from the roster, password resets, roles, schools, locks,
coach assignments and deletion of a teacher's records. Admin only; every change is audited."""

import streamlit as st

from coaching import admin
from coaching.errors import CoachloopError
from db import get_session
from db.models import ROLES
from ui.guard import guard

user = guard(__file__)
st.title("Users")
NEW_USER_FIELDS = ("new_username", "new_name", "new_role", "new_schools", "new_password")

with get_session() as session:
    schools = {s.name: s.id for s in admin.all_schools(session=session, by=user)}
    accounts, manage, logins, coaching_tab, deletion = st.tabs(
        ["Accounts", "Manage a user", "Teacher logins", "Coaches", "Delete records"]
    )
    try:
        with accounts:
            if created := st.session_state.pop("created_account", None):  # set before the rerun below
                st.success(f"Created {created['username']}.")
                if created["shown"]:
                    st.code(created["shown"], language=None)
                    st.caption("Shown once: pass it on now. They choose their own at first sign-in.")
            # Not clear_on_submit: a refused name stays in the form to be corrected; a created
            # account empties it (the keys are dropped before the rerun).
            with st.form("create_user"):
                st.subheader("New user")
                c1, c2, c3 = st.columns(3)
                username = c1.text_input("New username", key="new_username")
                c1.caption("Letters a-z, digits and . _ - @ (no spaces).")
                name = c2.text_input("Full name", key="new_name")
                role = c3.selectbox("Role", ROLES, index=2, key="new_role")
                picked = st.multiselect("Schools (leaders and coaches)", list(schools), key="new_schools")
                password = st.text_input(
                    "Password (empty: generate one)", type="password", key="new_password"
                )
                if st.form_submit_button("Create user"):
                    new, shown = admin.create_account(
                        session=session,
                        by=user,
                        username=username,
                        display_name=name,
                        role=role,
                        password=password,
                        school_ids=[schools[n] for n in picked],
                    )
                    st.session_state["created_account"] = {"username": new.username, "shown": shown}
                    for key in NEW_USER_FIELDS:
                        st.session_state.pop(key, None)
                    st.rerun()
            st.dataframe(admin.list_users(session=session, by=user), hide_index=True)

        with manage:
            table = admin.list_users(session=session, by=user)
            labels = {f"{r.username} ({r.name}, {r.role})": int(r.id) for r in table.itertuples()}
            chosen = st.selectbox("User", list(labels), index=None, placeholder="Choose a user")
            if chosen:
                uid = labels[chosen]
                row = table[table["id"] == uid].iloc[0]
                st.caption(
                    f"Active: {row['active']} · Locked: {row['locked']} · "
                    f"Failed sign-ins: {row['failed logins']}"
                )
                b1, b2, b3 = st.columns(3)
                if b1.button("Reset password", key="reset_pw"):
                    st.code(admin.reset_password(session=session, by=user, user_id=uid), language=None)
                    st.caption("The new password is shown once; they must change it at sign-in.")
                if row["locked"] and b2.button("Unlock", key="unlock"):
                    admin.unlock_user(session=session, by=user, user_id=uid)
                    st.rerun()
                if not row["locked"] and b2.button("Lock", key="lock"):
                    admin.lock_user(session=session, by=user, user_id=uid)
                    st.rerun()
                if row["active"] and b3.button("Deactivate", key="deactivate"):
                    admin.deactivate_user(session=session, by=user, user_id=uid)
                    st.rerun()
                if not row["active"] and b3.button("Reactivate", key="reactivate"):
                    admin.reactivate_user(session=session, by=user, user_id=uid)
                    st.rerun()
                with st.form("role_schools"):
                    new_role = st.selectbox("Role", ROLES, index=ROLES.index(row["role"]))
                    current = admin.user_schools(session=session, by=user, user_id=uid)
                    names = [n for n, i in schools.items() if i in current]
                    new_schools = st.multiselect("Schools", list(schools), default=names)
                    if st.form_submit_button("Save role and schools"):
                        admin.change_role(session=session, by=user, user_id=uid, role=new_role)
                        admin.set_schools(
                            session=session,
                            by=user,
                            user_id=uid,
                            school_ids=[schools[n] for n in new_schools],
                        )
                        st.rerun()

        with logins:
            st.write("Create a sign-in for every active teacher on the roster who has none.")
            school = st.selectbox("School", ["All schools", *schools], key="bulk_school")
            if st.button("Create teacher logins", key="bulk_create"):
                with st.spinner("Creating logins..."):
                    made = admin.bulk_create_teacher_logins(
                        session=session, by=user, school_id=schools.get(school)
                    )
                st.success(f"Created {len(made)} teacher logins. The passwords are shown once:")
                st.dataframe(made, hide_index=True)

        teachers, coaches = admin.teachers_and_coaches(session=session, by=user)
        tlabels = {f"{t.name} (#{t.id})": t.id for t in teachers}
        with coaching_tab:
            with st.form("assign_coach"):
                teacher = st.selectbox("Teacher", list(tlabels), index=None, key="assign_teacher")
                clabels = {"No coach": None, **{f"{c.display_name} ({c.username})": c.id for c in coaches}}
                coach = st.selectbox("Coach", list(clabels))
                if st.form_submit_button("Assign"):
                    if not teacher:
                        st.error("Pick a teacher to assign a coach to.")
                    else:
                        admin.assign_coach(
                            session=session, by=user, teacher_id=tlabels[teacher], coach_id=clabels[coach]
                        )
                        st.success("Saved.")

        with deletion:
            st.warning(
                "Deletes every observation, score, step, revisit, goal, brief and draft of the teacher, "
                "and the teacher. This cannot be undone; the audit log keeps only that it happened."
            )
            victim = st.selectbox("Teacher", list(tlabels), index=None, key="delete_teacher")
            confirm = st.text_input("Type DELETE to confirm")
            if st.button("Delete this teacher's records", key="delete_records", type="primary"):
                if not victim or confirm.strip() != "DELETE":
                    st.error("Choose a teacher and type DELETE to confirm.")
                else:
                    counts = admin.delete_teacher_records(
                        session=session, by=user, teacher_id=tlabels[victim]
                    )
                    st.success(f"Deleted: {counts}")
    except CoachloopError as exc:
        st.error(str(exc))
