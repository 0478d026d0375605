from django.apps import AppConfig


class ApksConfig(AppConfig):
    name = "apks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # commands/ validates install_apk's params through this app's releases (commands sits
        # below apks in the app order, so it exposes the hook and apks registers here).
        from apks.install import install_apk_params
        from commands import params

        params.register_install_apk(install_apk_params)
        # The policy channel's `apps` item lists releases of this registry (commands.policies.items).
        from apks.install import policy_app
        from commands.policies import items as policy_items

        policy_items.register_apps_resolver(policy_app)
        from apks.install import policy_release_choices
        from commands.policies import forms as policy_forms

        policy_forms.register_release_chooser(policy_release_choices)
        # enrollment/ (below) offers the marked agent release in the QR builder and one-liners.
        from apks.install import agent_apk_for_provisioning
        from enrollment import provisioning

        provisioning.register_agent_apk(agent_apk_for_provisioning)
        # ... and the registry's packages as kiosk choices.
        from apks.install import registry_packages
        from enrollment import selectors as enrollment_selectors

        enrollment_selectors.register_registry_packages(registry_packages)
