#!/bin/bash -e
# pi-gen (inside the image): the one installer, exactly as the Debian image build runs it.
/tmp/sms-appliance/image/install-appliance.sh --wheelhouse /tmp/sms-appliance/wheelhouse /
systemctl enable sms-appliance-firstboot.service
rm -rf /tmp/sms-appliance
