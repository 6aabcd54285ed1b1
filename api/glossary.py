"""What each field of the API means, and an example body per request schema.

``api.openapi_docs`` copies these into the OpenAPI document. Keys are field
names (``Schema.field`` when a name means something else in one schema); a
field added anywhere needs one line here, or the docs test names it.
"""

from __future__ import annotations

from typing import Any

FIELDS: dict[str, str] = {
    # outcomes (SPEC.md section 10)
    "phq9": "PHQ-9 (depression, 0-27): the figures for this instrument.",
    "gad7": "GAD-7 (anxiety, 0-21): the figures for this instrument.",
    "isi": "ISI (insomnia severity, 0-28): the figures for this instrument.",
    "first_dose_at": "When the first dose was taken; null before any dose.",
    "sleep_follows_mood": "The ISI change beside the PHQ-9 change: does sleep follow mood?",
    "isi_change": "The ISI's latest minus its baseline (negative is better).",
    "improved": "Improved: a drop of at least 5 (PHQ-9), 4 (GAD-7) or 6 (ISI) from baseline.",
    "response": "Response: at least a 50 % drop from baseline.",
    "remission": "Remission: PHQ-9 < 5, GAD-7 < 5, ISI < 8.",
    "week": "The week after the first dose the report looks at (0-104).",
    "from": "Only cases whose first dose is on or after this date.",
    "to": "Only cases whose first dose is on or before this date.",
    # identity and time
    "id": "The record's id, assigned by the service.",
    "case_id": "The id of the case this belongs to.",
    "created_at": "When the service stored it (UTC, ISO 8601).",
    "updated_at": "When the service last changed it (UTC, ISO 8601).",
    "at": "When the event was recorded (UTC, ISO 8601).",
    "taken_at": "When the measurement was taken (ISO 8601 with a time zone).",
    "completed_at": "When the session was completed (ISO 8601 with a time zone).",
    "actor_id": "The id of the user who made the change; null when the service made it.",
    # users
    "name": "The name: a user's sign-in name, a medication, a state, phase or trigger.",
    "role": "The user's role: `admin`, `coordinator` or `clinician`.",
    "license_states": "US state codes where the clinician holds a valid licence.",
    "UserCreated.token": "The bearer token, shown this once; only its hash is stored.",
    "token": "A bearer token, shown this once; only its hash is stored.",
    "active": "False once the user is deactivated: the token then gets a 401.",
    "drug_table_version": "The version of the drug table the screening classified against.",
    "acknowledged_at": "When a person acknowledged the reminder; null while nobody has.",
    "acknowledged_by": "The user who acknowledged the reminder.",
    "WorkItemPublic.case": "The case: its id, reference, state, phase and assignees.",
    "drug_classes": "Every drug class the name contains (a combination product has several).",
    "stopped_on": "The day the patient stopped taking it (YYYY-MM-DD).",
    "class_reason": "Why a clinician set the class of a name the drug table does not know.",
    "class_set_by": "The clinician who set the class by hand, if one did.",
    "ended_at": "When the taper was ended because its medication was made active again.",
    "licenses": "The clinician's licences: a US state and, optionally, the last day it is valid.",
    "user_id": "The id of the user this event is about.",
    # cases
    "patient_ref": "An opaque reference to the patient: never a name.",
    "referral": "Where the guide sends the patient instead: `cbt_i`, `orexin_antagonist`, "
    "`psychiatric_care`, `addiction_medicine`, `sleep_medicine` or `primary_care`.",
    "answers": "The failed requirement code the referral answers (null on referrals recorded "
    "before carepath stored it).",
    # adverse events and suicide risk (SPEC.md 4.6)
    "onset_at": "When the adverse event began (ISO 8601 with a time zone); for one the service "
    "records, the time of the fact that caused it. Default: when it is recorded.",
    "assessment_id": "The assessment the service found this event in, if it did.",
    "SafetyPlan.plan": "The safety plan reviewed with the patient: warning signs, coping steps, "
    "contacts, crisis lines, how the means are secured.",
    "SafetyPlanCreate.plan": "The safety plan reviewed with the patient: warning signs, coping "
    "steps, contacts, crisis lines, how the means are secured.",
    "reviewed_with_patient_at": "When the clinician reviewed the plan with the patient "
    "(ISO 8601 with a time zone).",
    "risk_level": "The clinician's suicide-risk assessment: `low`, `moderate` or `high`; "
    "`resume` after suicidal ideation needs `low`.",
    "means_secured": "True when the ketamine on hand is locked away or held by the treatment "
    "monitor.",
    "patient_state": "The US state (two-letter code) where the patient is treated.",
    "state": "The case's workflow state (see `GET /api/v1/workflow`).",
    "phase": "The coarse phase a coordinator sees for the state.",
    "assigned_clinician_id": "The clinician the case is assigned to, if any.",
    "assigned_coordinator_id": "The coordinator the case is assigned to, if any.",
    "CaseAssignment.clinician_id": "An active clinician's user id: the case's clinician.",
    "coordinator_id": "An active coordinator's user id: the case's coordinator.",
    "items": "This page's entries, in order.",
    "next_cursor": "Pass as `cursor` for the next page; null on the last page.",
    # history
    "insomnia_nights_per_week": "Nights a week with insomnia, 0 to 7.",
    "insomnia_duration_months": "How many months the insomnia has lasted.",
    "diagnoses": "Mood or anxiety diagnoses on record.",
    "failed_antidepressant_trials": "Adequate antidepressant trials that did not help.",
    "cbti_completed": "Whether a course of CBT-I was completed.",
    "seeking_sleep_med_replacement": "Whether the patient wants this to replace a sleep medicine.",
    "substance_use_disorder_history": "A history of substance use disorder (a contraindication).",
    "uncontrolled_hypertension": "Hypertension not under control (a contraindication).",
    "active_psychosis": "Active psychosis (a contraindication).",
    "psychosis_or_mania_history": "A history of psychosis or mania (a contraindication).",
    "insomnia_mood_driven": "A clinician's judgement that the insomnia follows the mood disorder.",
    "aneurysm_avm_or_ich": "Aneurysmal vascular disease, an arteriovenous malformation or an "
    "intracerebral haemorrhage (a contraindication).",
    "recent_mi_or_stroke": "A myocardial infarction or stroke in the last 6 months "
    "(a contraindication).",
    # profile and consent
    "date_of_birth": "The patient's date of birth (YYYY-MM-DD): after 1900-01-01, not future.",
    "pregnant": "Whether the patient is pregnant (a contraindication).",
    "breastfeeding": "Whether the patient is breastfeeding (a contraindication).",
    "Consent.version": "The version of the consent form the patient signed.",
    "signed_at": "When the patient signed the consent (ISO 8601 with a time zone).",
    "method": "How the consent was signed: `electronic` or `paper`.",
    "severe_psychiatric_instability": "Severe psychiatric instability (a contraindication).",
    "significant_breathing_problems": "Significant breathing problems (a contraindication).",
    "sleep_apnea": "Sleep apnea (a contraindication).",
    # assessments and vitals
    "instrument": "The questionnaire: `phq9`, `gad7` or `isi`.",
    "score": "The questionnaire's total score.",
    "item9": "PHQ-9 only, and required there: the answer to item 9 (thoughts of self-harm), "
    "0 to 3; at most the score, and at least the score minus 24.",
    "systolic": "Systolic blood pressure, mmHg.",
    "diastolic": "Diastolic blood pressure, mmHg.",
    "heart_rate": "Heart rate, beats per minute.",
    # medications, screening, tapers
    "dose": "The dose as prescribed, free text (e.g. `10 mg`).",
    "frequency": "How often it is taken, free text (e.g. `nightly`).",
    "drug_class": "The class the drug table (or a clinician) assigns to the medication.",
    "Medication.status": "`active`, or `stopped` once the patient no longer takes it.",
    "MedicationUpdate.status": "`stopped` to record that the patient no longer takes it.",
    "medication_id": "The id of the medication on this case.",
    "medication_list_version": "The medication list version the screening covered.",
    "clinician_id": "The clinician who made the screening.",
    "result": "The screening's outcome.",
    "findings": "The interactions found, each with its severity.",
    "notes": "Free-text notes for the care team; never shown in logs.",
    "plan": "The taper plan, free text.",
    "planned_by": "The user who recorded the taper plan.",
    "confirmed_by": "The user who confirmed the taper ended.",
    "confirmed_at": "When the taper's end was confirmed.",
    "last_dose_on": "The date of the last dose of the tapered medication.",
    "active_when_planned": "Whether the medication was still taken when the taper was planned.",
    "taper_id": "For a reminder about one taper (`taper_checkin`): that taper's id.",
    # dosing
    "monitor_present": "Whether the treatment monitor is with the patient.",
    "granted": "Whether the clearance allows a dose.",
    "expires_at": "When the clearance stops allowing a dose.",
    "recorded_by": "The user who recorded it.",
    "clearance_id": "The dose clearance a dosing session used.",
    "CareSession.kind": "The session: `preparation`, `dosing` or `integration`.",
    "SessionCreate.kind": "The session: `preparation`, `dosing` or `integration`.",
    "dose_mg": "The dose in milligrams.",
    "route": "How the dose is taken: `sublingual`, `oral` or `intranasal`.",
    "rationale": "Why the dose changes.",
    "carrier": "The carrier that ships the medication.",
    "tracking_number": "The carrier's tracking number.",
    "reason": "Why, in a sentence; recorded in the audit trail.",
    # adverse events
    "AdverseEvent.kind": "What happened (one of the adverse event kinds).",
    "AdverseEventCreate.kind": "What happened (one of the adverse event kinds).",
    "severity": "`mild`, `moderate` or `severe`.",
    "description": "What happened, in the care team's words.",
    "recorded_by_system": "True when the service recorded it itself (SPEC.md 4.6).",
    "resolved_at": "When the event was resolved; null while open.",
    "resolved_by": "The clinician who resolved it.",
    "resolution_note": "How it was resolved.",
    "note": "How the event was resolved.",
    # audit events
    "kind": "What kind of record this is.",
    "trigger": "The trigger fired.",
    "from_state": "The state before the transition.",
    "to_state": "The state after the transition.",
    "data": "What was recorded, as stored in the audit trail.",
    # reminders
    "ReminderPublic.kind": "What the reminder is for (see SPEC section 7).",
    "due_at": "When the reminder is due.",
    "recipient_role": "The role the reminder is sent to.",
    "ReminderPublic.status": "`pending`, `sent`, `failed` or `cancelled`.",
    "attempts": "Delivery attempts so far.",
    "sent_at": "When it was delivered; null until then.",
    # workflow documents and options
    "dest": "The state the trigger leads to; null when the state does not change.",
    "source": "The state the move starts from.",
    "sources": "The states the trigger may fire from.",
    "roles": "The roles that may fire the trigger.",
    "unmet": "Every requirement not met now, with its code and message.",
    "initial": "The state a new case starts in.",
    "phases": "Every phase, with its states.",
    "states": "The states, in workflow order.",
    "triggers": "Every trigger, as in the workflow table.",
    "terminal": "True for a state a case never leaves.",
    # errors and health
    "Health.status": "`ok` when the database answers.",
    "status": "The HTTP status code.",
    "code": "A machine-readable code (SPEC sections 3 and 6).",
    "message": "What is unmet, for a person to read.",
    "detail": "What went wrong with this request, for a person to read.",
    "title": "A short summary of the problem type.",
    "ProblemDetails.type": "A URI naming the problem type.",
    "type": "The error's type, from the validator.",
    "loc": "Where the error is: `body`, `query` or `path`, then the field.",
    "msg": "What is wrong with the field.",
}

FIELD_EXAMPLES: dict[str, Any] = {
    "reason": "Patient asked to pause treatment.",
    "dose_mg": 150,
    "route": "sublingual",
    "rationale": "Partial response at the current dose; no adverse events.",
    "carrier": "UPS",
    "tracking_number": "1Z999AA10123456784",
}
"""Example values of trigger body fields (the trigger bodies are built from the table)."""

EXAMPLES: dict[str, Any] = {
    "UserCreate": {
        "name": "nina",
        "role": "clinician",
        "licenses": [{"state": "CA", "expires_on": "2027-06-30"}],
        "license_states": ["NY"],
    },
    "UserLicenses": {"licenses": [{"state": "CA", "expires_on": "2027-06-30"}]},
    "CaseCreate": {"patient_ref": "MRN-000123", "patient_state": "CA"},
    "CaseUpdate": {"patient_state": "NY"},
    "CaseAssignment": {"clinician_id": 2, "coordinator_id": 3},
    "HistoryIn": {
        "insomnia_nights_per_week": 5,
        "insomnia_duration_months": 8,
        "diagnoses": ["depression"],
        "insomnia_mood_driven": True,
        "failed_antidepressant_trials": 2,
        "cbti_completed": True,
        "seeking_sleep_med_replacement": False,
        "substance_use_disorder_history": False,
        "uncontrolled_hypertension": False,
        "active_psychosis": False,
        "psychosis_or_mania_history": False,
        "severe_psychiatric_instability": False,
        "significant_breathing_problems": False,
        "sleep_apnea": False,
        "aneurysm_avm_or_ich": False,
        "recent_mi_or_stroke": False,
    },
    "ProfileIn": {"date_of_birth": "1984-06-15", "pregnant": False, "breastfeeding": False},
    "ConsentCreate": {
        "version": "2026-1",
        "signed_at": "2026-03-02T09:00:00Z",
        "method": "electronic",
    },
    "AssessmentCreate": {
        "instrument": "phq9",
        "score": 16,
        "item9": 0,
        "taken_at": "2026-03-02T09:30:00Z",
    },
    "VitalCreate": {
        "systolic": 128,
        "diastolic": 82,
        "heart_rate": 72,
        "taken_at": "2026-03-02T09:35:00Z",
    },
    "MedicationCreate": {"name": "sertraline", "dose": "100 mg", "frequency": "daily"},
    "MedicationUpdate": {"status": "stopped"},
    "ScreeningCreate": {"notes": "Reviewed against the current medication list."},
    "TaperCreate": {"medication_id": 3, "plan": "Halve the dose weekly for three weeks."},
    "TaperConfirm": {"last_dose_on": "2026-03-20"},
    "ClearanceCreate": {"systolic": 124, "diastolic": 80, "monitor_present": True},
    "SessionCreate": {"kind": "dosing", "completed_at": "2026-04-01T20:00:00Z", "clearance_id": 7},
    "AdverseEventCreate": {
        "kind": "nausea",
        "severity": "mild",
        "description": "Nausea for an hour after the dose.",
    },
    "AdverseEventResolve": {"note": "Resolved without treatment."},
    "SafetyPlanCreate": {
        "plan": "Warning signs, coping steps, the monitor and the crisis line (988); "
        "the ketamine is locked away by the monitor.",
        "reviewed_with_patient_at": "2026-04-03T16:00:00Z",
        "risk_level": "low",
        "means_secured": True,
    },
}
"""An example request body per schema name."""
